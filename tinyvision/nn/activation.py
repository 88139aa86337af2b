"""Elementwise activation layers and softmax (the formulas' code lives in ``ops``)."""
from .. import ops
from .module import Module


class ReLU(Module):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0. Any shape -> same shape."""

    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    """y = x for x >= 0, negative_slope * x otherwise. Any shape -> same shape."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """y = x Phi(x), Phi the standard normal CDF (approximate='none'), or
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with approximate='tanh'.
    Any shape -> same shape."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)). Any shape -> same shape."""

    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    """y = tanh(x). Any shape -> same shape."""

    def forward(self, x):
        return ops.tanh(x)


class Softmax(Module):
    """y_i = exp(x_i) / sum_j exp(x_j) along ``dim``. Any shape -> same shape."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return ops.softmax(x, axis=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """y_i = x_i - log sum_j exp(x_j) along ``dim`` (stable). Any shape -> same shape."""

    def forward(self, x):
        return ops.log_softmax(x, axis=self.dim)
