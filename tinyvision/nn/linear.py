"""Fully connected layers."""
from .. import ops
from . import init
from .module import Module, new_parameter


class Linear(Module):
    """Affine map of the last axis: y = x W^T + b.

    Shapes: x (..., in_features) -> y (..., out_features); W (out_features, in_features),
    b (out_features,). Initialisation as PyTorch: W, b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        kw = dict(device=device, dtype=dtype)
        self.weight = new_parameter((out_features, in_features), **kw)
        self.bias = new_parameter((out_features,), **kw) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expected input (..., {self.in_features}), got {tuple(x.shape)}")
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
