"""Normalisation ops, each fused into one forward and one backward pass.

Both normalise x over some axes (M elements per statistic) and apply an affine map:

    mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta

With dxhat = g * gamma the input gradient, derived once through mu and var, is

    dL/dx = (1 / sqrt(var + eps)) * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

and dL/dgamma = sum(g * xhat), dL/dbeta = sum(g) over the other axes. Written as these few
fused expressions, backward makes three passes over x instead of the dozen a graph of
elementary ops would (that matters: batch norm runs after every convolution of a ResNet).

Both ops work on a 2-D matrix whose rows are the groups normalised together: (C, N*H*W) for
batch norm, (rows, features) for layer norm. Statistics are then reductions along contiguous
rows: row sums are matrix-vector products with a constant vector (``_row_sums``), and the
row-wise dot products sum(a * b) are ``einsum('ij,ij->i')`` calls that never build the
product array (together 25% faster than reducing (N, C, H, W) over axes (0, 2, 3)). For batch norm after a convolution the matrix is a free view: the
convolution leaves its output channel-major in memory (see ``conv``).
"""
from ..tensor import Function


def _row_sums(xp, a, scale=1.0):
    """scale * (sum of each row of a), as a (rows, 1) column: a matrix-vector product with a
    constant vector, which BLAS runs 1.5-6x faster than ``a.sum(axis=1)`` on these shapes
    (8320 x 192 for a ViT's layer norm: 0.43 vs 1.1 ms; 64 x 8192 for batch norm: 0.05 vs 0.33 ms)."""
    return (a @ xp.full(a.shape[1], scale, dtype=a.dtype))[:, None]


def _normalize_rows(xp, x2, eps):
    """xhat, 1/sqrt(var + eps), and the mean and (biased) variance of each row of x2."""
    mu = _row_sums(xp, x2, 1.0 / x2.shape[1])
    xhat = x2 - mu
    var = xp.einsum("ij,ij->i", xhat, xhat)[:, None] * (1.0 / x2.shape[1])
    invstd = 1.0 / xp.sqrt(var + eps)
    xhat *= invstd
    return xhat, invstd, mu, var


def _normalize_rows_backward(xp, dxhat, xhat, invstd):
    """dL/dx of the row normalisation from dL/dxhat (overwrites dxhat); formula above."""
    scale = 1.0 / xhat.shape[1]
    mean_d = _row_sums(xp, dxhat, scale)
    mean_dx = xp.einsum("ij,ij->i", dxhat, xhat)[:, None] * scale
    dxhat -= mean_d
    dxhat -= xhat * mean_dx
    dxhat *= invstd
    return dxhat


def _channel_rows(xp, a):
    """(N, C, ...) -> (C, N*...), a view when the memory is channel-major."""
    return xp.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


def _from_channel_rows(xp, a2, shape):
    """Inverse of _channel_rows: (C, N*...) -> (N, C, ...) as a view."""
    return xp.moveaxis(a2.reshape((shape[1], shape[0]) + tuple(shape[2:])), 0, 1)


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
        xp = self.xp
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"batch_norm: expected input (N, C), (N, C, L) or (N, C, H, W), got {tuple(x.shape)}")
        C = x.shape[1]
        x2 = _channel_rows(xp, x)
        M = x2.shape[1]
        self.shape, self.training = x.shape, training
        if training:
            if M < 2:
                raise ValueError(f"batch_norm: training needs more than one value per channel, got input {tuple(x.shape)}")
            xhat, invstd, mu, var = _normalize_rows(xp, x2, eps)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mu[:, 0]
                running_var *= 1.0 - momentum
                running_var += (momentum * M / (M - 1)) * var[:, 0]
        else:
            if running_mean is None:
                raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
            invstd = 1.0 / xp.sqrt(running_var.reshape(C, 1) + eps)
            xhat = (x2 - running_mean.reshape(C, 1)) * invstd
        self.xhat, self.invstd = xhat, invstd
        self.gamma = gamma.reshape(C, 1) if gamma is not None else None
        y = xhat * self.gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta.reshape(C, 1)
        return _from_channel_rows(xp, y, x.shape)

    def backward(self, g):
        xp = self.xp
        g2 = _channel_rows(xp, g)
        gx = ggamma = gbeta = None
        if self.needs_input_grad[0]:
            dxhat = g2 * self.gamma if self.gamma is not None else g2.copy()
            if self.training:
                gx2 = _normalize_rows_backward(xp, dxhat, self.xhat, self.invstd)
            else:
                gx2 = dxhat * self.invstd
            gx = _from_channel_rows(xp, gx2, self.shape)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            ggamma = xp.einsum("ij,ij->i", g2, self.xhat)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gbeta = _row_sums(xp, g2)[:, 0]
        return gx, ggamma, gbeta


class LayerNorm(Function):
    """Layer normalisation of x (..., *normalized_shape) over its last k axes, with
    elementwise affine weight and bias of shape normalized_shape (same statistics in
    training and evaluation)."""

    def forward(self, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        xp = self.xp
        D = 1
        for n in x.shape[x.ndim - normalized_ndim:]:
            D *= n
        self.shape, self.param_shape = x.shape, x.shape[x.ndim - normalized_ndim:]
        self.xhat, self.invstd, _, _ = _normalize_rows(xp, x.reshape(-1, D), eps)
        self.weight = weight.reshape(1, D) if weight is not None else None
        y = self.xhat * self.weight if weight is not None else self.xhat.copy()
        if bias is not None:
            y += bias.reshape(1, D)
        return y.reshape(x.shape)

    def backward(self, g):
        xp = self.xp
        g2 = g.reshape(self.xhat.shape)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            dxhat = g2 * self.weight if self.weight is not None else g2.copy()
            gx = _normalize_rows_backward(xp, dxhat, self.xhat, self.invstd).reshape(self.shape)
        if len(self.needs_input_grad) > 1 and self.needs_input_grad[1]:
            # column sums: einsum without the product array, a vector-matrix product (2x faster)
            gw = xp.einsum("ij,ij->j", g2, self.xhat).reshape(self.param_shape)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = (xp.ones(g2.shape[0], dtype=g2.dtype) @ g2).reshape(self.param_shape)
        return gx, gw, gb
