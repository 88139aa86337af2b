"""Dropout."""
from .. import ops
from .module import Module


class Dropout(Module):
    """Inverted dropout: in training, y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p), so that
    E[y] = x; in evaluation y = x. Any shape -> same shape."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return ops.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
