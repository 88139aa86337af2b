"""The functional ops under the names of ``torch.nn.functional``.

Everything here is the op from ``tinyvision.ops`` (one implementation per concept); the few
wrappers only translate PyTorch's argument conventions (``dim`` for ``axis``, ``F.pad``'s
last-axis-first padding tuple).
"""
from ..ops import (avg_pool2d, batch_norm, conv2d, conv_transpose2d, cross_entropy, dropout, flatten,
                   gelu, layer_norm, leaky_relu, linear, max_pool2d, mse_loss, relu, sigmoid, tanh)
from .. import ops as _ops
from ..ops.resize import adaptive_avg_pool2d, interpolate

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv2d", "conv_transpose2d",
           "cross_entropy", "dropout", "flatten", "gelu", "interpolate", "layer_norm", "leaky_relu",
           "linear", "log_softmax", "max_pool2d", "mse_loss", "pad", "relu", "sigmoid", "softmax", "tanh"]


def softmax(x, dim=-1):
    return _ops.softmax(x, axis=dim)


def log_softmax(x, dim=-1):
    return _ops.log_softmax(x, axis=dim)


def pad(x, pad, value=0.0):
    """Constant padding, PyTorch's convention: ``pad`` = (left, right) for the last axis,
    then (top, bottom) for the one before, and so on: F.pad(x, (1, 1, 2, 2)) pads W by 1
    and H by 2 on each side."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad needs pairs for at most {x.ndim} axes, got {pad!r}")
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return _ops.pad(x, tuple(pairs), value=value)
