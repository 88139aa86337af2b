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

Rows are independent (statistics per row), so on the CPU each op runs as one function of a
block of rows, the blocks split over threads (``parallel.for_rows``), each writing its own
rows of preallocated outputs. Column sums (layer norm's dgamma, dbeta) are kept per block
and added at the end.
"""
from .. import parallel
from ..tensor import Function


def _row_sums(xp, a, scale=1.0):
    """scale * (sum of each row of a), as a (rows, 1) column: a matrix-vector product with a
    constant vector, which BLAS runs 1.5-6x faster than ``a.sum(axis=1)`` on these shapes
    (8320 x 192 for a ViT's layer norm: 0.43 vs 1.1 ms; 64 x 8192 for batch norm: 0.05 vs 0.33 ms)."""
    return (a @ xp.full(a.shape[1], scale, dtype=a.dtype))[:, None]


def _center_rows(xp, x2, eps, xc, stats):
    """Centre each row of x2 into xc = x - mean (same shape); stats (3, rows, 1) receives
    1/sqrt(var + eps), the mean and the (biased) variance of each row. xhat = xc / sqrt(var + eps)
    is left to the caller, which can often fold the scale into a pass it makes anyway."""
    mu = _row_sums(xp, x2, 1.0 / x2.shape[1])
    xp.subtract(x2, mu, out=xc)
    var = xp.einsum("ij,ij->i", xc, xc)[:, None] * (1.0 / x2.shape[1])
    stats[0], stats[1], stats[2] = 1.0 / xp.sqrt(var + eps), mu, var


def _normalize_rows_backward(xp, dxhat, xhat, invstd):
    """dL/dx of the row normalisation from dL/dxhat, in place in dxhat; formula above."""
    scale = 1.0 / xhat.shape[1]
    mean_d = _row_sums(xp, dxhat, scale)
    mean_dx = xp.einsum("ij,ij->i", dxhat, xhat)[:, None] * scale
    dxhat -= mean_d
    dxhat -= xhat * mean_dx
    dxhat *= invstd


def _affine(xp, y, xhat, gamma, beta):
    """y = xhat * gamma + beta in place (either may be None)."""
    if gamma is not None:
        xp.multiply(xhat, gamma, out=y)
    else:
        y[...] = xhat
    if beta is not None:
        y += beta


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
        if training and M < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input {tuple(x.shape)}")
        if not training and running_mean is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        self.gamma = gamma.reshape(C, 1) if gamma is not None else None
        beta = beta.reshape(C, 1) if beta is not None else None
        y = xp.empty(x2.shape, x2.dtype)
        stats = xp.empty((3, C, 1), dtype=x2.dtype)  # invstd, mean, variance
        if training:
            self.xs = xp.empty(x2.shape, x2.dtype)  # x - mean: xhat before its scale
        else:
            stats[0] = 1.0 / xp.sqrt(running_var.reshape(C, 1) + eps)
            stats[1] = running_mean.reshape(C, 1)
            self.xs = x2

        def rows(r):
            # y = a xs + b with a = gamma / sqrt(var + eps), one pass: in training xs = x - mean
            # and b = beta, so xhat itself is never written; in evaluation the statistics are
            # fixed, xs = x and b = beta - mean a (backward then needs x, not xhat).
            if training:
                _center_rows(xp, x2[r], eps, self.xs[r], stats[:, r])
            a = stats[0, r] if gamma is None else stats[0, r] * self.gamma[r]
            b = None if beta is None else beta[r]
            if not training:
                b = -stats[1, r] * a if b is None else b - stats[1, r] * a
            xp.multiply(self.xs[r], a, out=y[r])
            if b is not None:
                y[r] += b
        parallel.for_rows(rows, C, parallel.split_size(x2))
        self.invstd, self.mean = stats[0], stats[1]
        if training and running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * stats[1, :, 0]
            running_var *= 1.0 - momentum
            running_var += (momentum * M / (M - 1)) * stats[2, :, 0]
        return _from_channel_rows(xp, y, x.shape)

    def backward(self, g):
        xp = self.xp
        g2 = _channel_rows(xp, g)
        C, M = g2.shape
        need_x = self.needs_input_grad[0]
        need_gamma = len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        need_beta = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        gx2 = xp.empty(g2.shape, g2.dtype) if need_x else None
        ggamma = xp.empty(C, g2.dtype) if need_gamma else None
        gbeta = xp.empty(C, g2.dtype) if need_beta else None

        def rows(r):
            # gamma is one number per row here, so the general formula factors as
            #   dL/dx = k g - k sum(g) / M - xhat (k sum(g xhat) / M),   k = gamma / sqrt(var + eps),
            # and sum(g) and sum(g xhat) are dL/dbeta and dL/dgamma: four passes over the rows
            # fewer than forming dxhat = g gamma first (layer norm's per-column gamma cannot).
            # sum(g xhat) = sum(g xs) / sqrt(var + eps) from the saved xs = x - mean (training);
            # in evaluation xs = x, so the mean comes off as mean sum(g), and dL/dx = k g.
            g, invstd = g2[r], self.invstd[r]
            sum_g = _row_sums(xp, g)
            if self.training or need_gamma:
                sum_gx = xp.einsum("ij,ij->i", g, self.xs[r])[:, None]
                if not self.training:
                    sum_gx -= self.mean[r] * sum_g
                sum_gx *= invstd
            if need_gamma:
                ggamma[r] = sum_gx[:, 0]
            if need_beta:
                gbeta[r] = sum_g[:, 0]
            if need_x:
                k = invstd if self.gamma is None else invstd * self.gamma[r]
                xp.multiply(g, k, out=gx2[r])
                if self.training:  # xhat (k sum(g xhat) / M) = xs (k invstd sum(g xhat) / M)
                    gx2[r] -= self.xs[r] * (k * invstd * sum_gx * (1.0 / M))
                    gx2[r] -= k * sum_g * (1.0 / M)
        parallel.for_rows(rows, C, parallel.split_size(g2))
        return (_from_channel_rows(xp, gx2, self.shape) if need_x else None), ggamma, gbeta


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
        x2 = x.reshape(-1, D)
        self.xhat, y = xp.empty(x2.shape, x2.dtype), xp.empty(x2.shape, x2.dtype)
        stats = xp.empty((3, x2.shape[0], 1), dtype=x2.dtype)
        self.weight = weight.reshape(1, D) if weight is not None else None
        bias = bias.reshape(1, D) if bias is not None else None

        def rows(r):  # the weight and bias are per feature (column): the same for every block
            _center_rows(xp, x2[r], eps, self.xhat[r], stats[:, r])
            self.xhat[r] *= stats[0, r]  # backward reads xhat several times: store it scaled
            _affine(xp, y[r], self.xhat[r], self.weight, bias)
        parallel.for_rows(rows, x2.shape[0], parallel.split_size(x2))
        self.invstd = stats[0]
        return y.reshape(x.shape)

    def backward(self, g):
        xp = self.xp
        g2 = g.reshape(self.xhat.shape)
        need_x = self.needs_input_grad[0]
        need_w = len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        need_b = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        gx2 = xp.empty(g2.shape, g2.dtype) if need_x else None

        def rows(r):  # returns this block's share of the column sums dL/dweight, dL/dbias
            if need_x:
                _affine(xp, gx2[r], g2[r], self.weight, None)
                _normalize_rows_backward(xp, gx2[r], self.xhat[r], self.invstd[r])
            # column sums: einsum without the product array, a vector-matrix product (2x faster)
            gw = xp.einsum("ij,ij->j", g2[r], self.xhat[r]) if need_w else None
            gb = xp.ones(g2[r].shape[0], dtype=g2.dtype) @ g2[r] if need_b else None
            return gw, gb
        parts = parallel.for_rows(rows, g2.shape[0], parallel.split_size(g2))
        gw = sum(p[0] for p in parts) if need_w else None
        gb = sum(p[1] for p in parts) if need_b else None
        return ((gx2.reshape(self.shape) if need_x else None),
                gw.reshape(self.param_shape) if need_w else None,
                gb.reshape(self.param_shape) if need_b else None)
