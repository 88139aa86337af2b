"""Loss modules (the formulas live in ``ops.loss``)."""
from .. import ops
from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy with integer class targets:

        loss_n = -sum_k q_nk log softmax(z_n)_k,  q_n = (1 - eps) onehot(y_n) + eps / K

    (eps = label_smoothing), optionally class-weighted, averaged over the samples
    (reduction='mean'), summed ('sum') or returned per sample ('none'); targets equal to
    ignore_index contribute nothing.

    Shapes: logits (N, K) or (N, K, d1, ...), target (N,) or (N, d1, ...) integers -> scalar
    (or the target's shape with reduction='none'). ``weight`` (K,) is a buffer.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, logits, target):
        # ops.cross_entropy checks the shapes, dtypes and target range with clear errors.
        return ops.cross_entropy(logits, target, weight=self.weight, label_smoothing=self.label_smoothing,
                                 reduction=self.reduction, ignore_index=self.ignore_index)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class MSELoss(Module):
    """loss = mean((a - b)^2) (reduction='mean'), the sum ('sum') or elementwise ('none').

    Shapes: a, b (...) of one shape -> scalar (or that shape with reduction='none').
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, a, b):
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"MSELoss expected two inputs of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        return ops.mse_loss(a, b, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
