"""Normalisation ops, each fused into one forward and one backward pass.

Both normalise x over some axes (M elements per statistic) and apply an affine map:

    mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta

With dxhat = g * gamma the input gradient, derived once through mu and var, is

    dL/dx = (1 / sqrt(var + eps)) * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

and dL/dgamma = sum(g * xhat), dL/dbeta = sum(g) over the other axes. Written as these few
fused expressions, backward makes three passes over x instead of the dozen a graph of
elementary ops would (that matters: batch norm runs after every convolution of a ResNet).
"""
from ..tensor import Function


def _normalize_backward(g, gamma, xhat, invstd, axes):
    """The shared backward of batch and layer norm (formula in the module docstring)."""
    dxhat = g * gamma if gamma is not None else g.copy()  # updated in place below
    mean_d = dxhat.mean(axis=axes, keepdims=True)
    mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
    dxhat -= mean_d
    dxhat -= xhat * mean_dx
    dxhat *= invstd
    return dxhat


class BatchNorm(Function):
    """Batch normalisation of x (N, C) or (N, C, H, W) per channel c, over axes (0, 2, 3).

    Training: the batch statistics normalise x, and the running estimates move towards them
    (PyTorch's convention, updated in place):
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)   (unbiased)
    Evaluation: running_mean and running_var normalise x, so y is an affine map of x and
    dL/dx = g * gamma / sqrt(running_var + eps).
    """

    def forward(self, x, gamma=None, beta=None, running_mean=None, running_var=None,
                training=True, momentum=0.1, eps=1e-5):
        xp = self.xp
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"batch_norm: expected input (N, C), (N, C, L) or (N, C, H, W), got {tuple(x.shape)}")
        C = x.shape[1]
        shape = (1, C) + (1,) * (x.ndim - 2)
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.training = training
        if training:
            M = x.size // C
            if M < 2:
                raise ValueError(f"batch_norm: training needs more than one value per channel, got input {tuple(x.shape)}")
            mu = x.mean(axis=self.axes, keepdims=True)
            xc = x - mu
            var = (xc * xc).mean(axis=self.axes, keepdims=True)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mu.reshape(C)
                running_var *= 1.0 - momentum
                running_var += (momentum * M / (M - 1)) * var.reshape(C)
        else:
            if running_mean is None:
                raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
            xc = x - running_mean.reshape(shape)
            var = running_var.reshape(shape)
        self.invstd = 1.0 / xp.sqrt(var + eps)
        xc *= self.invstd
        self.xhat = xc
        self.gamma = gamma.reshape(shape) if gamma is not None else None
        y = xc * self.gamma if gamma is not None else xc.copy()
        if beta is not None:
            y += beta.reshape(shape)
        return y

    def backward(self, g):
        gx = ggamma = gbeta = None
        if self.needs_input_grad[0]:
            if self.training:
                gx = _normalize_backward(g, self.gamma, self.xhat, self.invstd, self.axes)
            else:
                gx = g * (self.invstd * self.gamma if self.gamma is not None else self.invstd)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            ggamma = (g * self.xhat).sum(axis=self.axes)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gbeta = g.sum(axis=self.axes)
        return gx, ggamma, gbeta


class LayerNorm(Function):
    """Layer normalisation of x (..., *normalized_shape) over its last k axes, with
    elementwise affine weight and bias of shape normalized_shape (same statistics in
    training and evaluation)."""

    def forward(self, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        xp = self.xp
        self.axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        mu = x.mean(axis=self.axes, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=self.axes, keepdims=True)
        self.invstd = 1.0 / xp.sqrt(var + eps)
        xc *= self.invstd
        self.xhat, self.weight = xc, weight
        y = xc * weight if weight is not None else xc.copy()
        if bias is not None:
            y += bias
        return y

    def backward(self, g):
        lead = tuple(range(g.ndim - len(self.axes)))
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = _normalize_backward(g, self.weight, self.xhat, self.invstd, self.axes)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            gw = (g * self.xhat).sum(axis=lead)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=lead)
        return gx, gw, gb
