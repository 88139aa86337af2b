"""Normalisation ops: batch norm and layer norm.

Both normalise x over some axes (M values per statistic) and apply an affine map:

    mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta

With dxhat = g * gamma the input gradient, derived once through mu and var, is

    dL/dx = (1 / sqrt(var + eps)) * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

and dL/dgamma = sum(g * xhat), dL/dbeta = sum(g) over the axes the statistics did not run over.

The functions below are these formulas, written with NumPy-API calls that run on NumPy and CuPy
(the reference path). For NumPy arrays the ops call ``kernels.norm`` instead: the same math
fused into fewer passes over memory and split over threads (``tv.use_reference_kernels()``
switches back to the formulas here).
"""
import numpy as np

from ..kernels import norm as fast, reference_enabled
from ..tensor import Function


def _normalize_backward(dxhat, xhat, invstd, axes):
    """dL/dx of xhat = (x - mean(x)) / sqrt(var(x) + eps), the statistics taken over ``axes``,
    from dL/dxhat; ``invstd`` = 1 / sqrt(var + eps) broadcasts against x."""
    mean = lambda a: a.mean(axis=axes, keepdims=True)  # noqa: E731
    return invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """Batch norm of x per channel, over the batch and spatial axes.

    x: (N, C), (N, C, L) or (N, C, H, W); gamma, beta: (C,) or None; running_mean,
    running_var: (C,), or None in training (updated in place when given).
    Returns y (x's shape) and the cache for ``batch_norm_backward``.
    """
    axes = (0,) + tuple(range(2, x.ndim))          # every axis but the channel axis
    per_channel = (1, -1) + (1,) * (x.ndim - 2)    # a (C,) vector shaped to broadcast against x
    if training:
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        if running_mean is not None:
            M = x.size // x.shape[1]               # values per channel
            running_mean *= 1.0 - momentum
            running_mean += momentum * mu
            running_var *= 1.0 - momentum
            running_var += (momentum * M / (M - 1)) * var  # the unbiased variance
    else:
        mu, var = running_mean, running_var
    invstd = (1.0 / (var + eps) ** 0.5).reshape(per_channel)
    xhat = (x - mu.reshape(per_channel)) * invstd
    y = xhat if gamma is None else xhat * gamma.reshape(per_channel) + beta.reshape(per_channel)
    return y, (xhat, invstd, gamma, training)


def batch_norm_backward(g, cache, needs):
    """Gradients (dL/dx, dL/dgamma, dL/dbeta) from g = dL/dy (x's shape); ``needs`` says
    which are wanted (None for the others). In evaluation the statistics are constants, so
    dL/dx = g gamma / sqrt(running_var + eps)."""
    xhat, invstd, gamma, training = cache
    axes = (0,) + tuple(range(2, g.ndim))
    dgamma = (g * xhat).sum(axis=axes) if needs[1] else None
    dbeta = g.sum(axis=axes) if needs[2] else None
    dx = None
    if needs[0]:
        dxhat = g if gamma is None else g * gamma.reshape(invstd.shape)
        dx = _normalize_backward(dxhat, xhat, invstd, axes) if training else dxhat * invstd
    return dx, dgamma, dbeta


def layer_norm_forward(x, weight, bias, normalized_ndim, eps):
    """Layer norm of x over its last ``normalized_ndim`` axes.

    x: (..., *normalized_shape); weight, bias: normalized_shape or None.
    Returns y (x's shape) and the cache for ``layer_norm_backward``.
    """
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    invstd = 1.0 / (var + eps) ** 0.5
    xhat = (x - mu) * invstd
    y = xhat if weight is None else xhat * weight + bias
    return y, (xhat, invstd, weight, axes)


def layer_norm_backward(g, cache, needs):
    """Gradients (dL/dx, dL/dweight, dL/dbias) from g = dL/dy (x's shape); ``needs`` says
    which are wanted (None for the others)."""
    xhat, invstd, weight, axes = cache
    lead = tuple(range(g.ndim - len(axes)))        # the axes the weight is shared over
    dweight = (g * xhat).sum(axis=lead) if needs[1] else None
    dbias = g.sum(axis=lead) if needs[2] else None
    dx = None
    if needs[0]:
        dx = _normalize_backward(g if weight is None else g * weight, xhat, invstd, axes)
    return dx, dweight, dbias


def _needs(ctx):
    """needs_input_grad padded to (x, scale, shift): the op may have been applied without them."""
    return ctx.needs_input_grad + (False,) * (3 - len(ctx.needs_input_grad))


class BatchNorm(Function):
    """Batch normalisation of x (N, C), (N, C, L) or (N, C, H, W) per channel c, over all
    other axes (M = N*H*W values per channel).

    Training: the batch statistics normalise x, and the running estimates move towards them
    (PyTorch's convention, updated in place):
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)   (unbiased)
    Evaluation: running_mean and running_var normalise x, so y is an affine map of x and
    dL/dx = g * gamma / sqrt(running_var + eps).
    """

    def forward(self, x, gamma=None, beta=None, running_mean=None, running_var=None,
                training=True, momentum=0.1, eps=1e-5):
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"batch_norm: expected input (N, C), (N, C, L) or (N, C, H, W), got {tuple(x.shape)}")
        if training and x.size // x.shape[1] < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input {tuple(x.shape)}")
        if not training and running_mean is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        self.fast = isinstance(x, np.ndarray) and not reference_enabled()
        y, self.cache = (fast.batch_norm_forward if self.fast else batch_norm_forward)(
            x, gamma, beta, running_mean, running_var, training, momentum, eps)
        return y

    def backward(self, g):
        return (fast.batch_norm_backward if self.fast else batch_norm_backward)(g, self.cache, _needs(self))


class LayerNorm(Function):
    """Layer normalisation of x (..., *normalized_shape) over its last k axes, with
    elementwise affine weight and bias of shape normalized_shape (same statistics in
    training and evaluation)."""

    def forward(self, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        self.fast = isinstance(x, np.ndarray) and not reference_enabled()
        y, self.cache = (fast.layer_norm_forward if self.fast else layer_norm_forward)(
            x, weight, bias, normalized_ndim, eps)
        return y

    def backward(self, g):
        return (fast.layer_norm_backward if self.fast else layer_norm_backward)(g, self.cache, _needs(self))
