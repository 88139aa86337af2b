"""Fast CPU kernels of batch norm and layer norm (``ops.norm``): the same functions, the same
signatures, each op fused into one forward and one backward pass over row blocks.

Both work on a 2-D matrix whose rows are the groups normalised together: (C, N*H*W) for
batch norm, (rows, features) for layer norm. Statistics are then reductions along contiguous
rows: row sums are matrix-vector products with a constant vector (``_row_sums``), and the
row-wise dot products sum(a * b) are ``einsum('ij,ij->i')`` calls that never build the
product array. For batch norm after a convolution the matrix is a free view: the convolution
leaves its output channel-major in memory.

Rows are independent (statistics per row), so each op runs as one function of a block of
rows, the blocks split over threads (``parallel.for_rows``), each writing its own rows of
preallocated outputs. Column sums (layer norm's dgamma, dbeta) are kept per block and added
at the end. Backward makes three passes over x instead of the dozen of the plain formula.
Measurements behind these choices: docs/performance.md.
"""
import numpy as np

from .. import parallel


def _row_sums(a, scale=1.0):
    """scale * (sum of each row of a), as a (rows, 1) column: a matrix-vector product with a
    constant vector, which BLAS runs several times faster than ``a.sum(axis=1)`` here."""
    return (a @ np.full(a.shape[1], scale, dtype=a.dtype))[:, None]


def _center_rows(x2, eps, xc, stats):
    """Centre each row of x2 into xc = x - mean (same shape); stats (3, rows, 1) receives
    1/sqrt(var + eps), the mean and the (biased) variance of each row. xhat = xc / sqrt(var + eps)
    is left to the caller, which can often fold the scale into a pass it makes anyway."""
    mu = _row_sums(x2, 1.0 / x2.shape[1])
    np.subtract(x2, mu, out=xc)
    var = np.einsum("ij,ij->i", xc, xc)[:, None] * (1.0 / x2.shape[1])
    stats[0], stats[1], stats[2] = 1.0 / np.sqrt(var + eps), mu, var


def _normalize_rows_backward(dxhat, xhat, invstd):
    """dL/dx of the row normalisation from dL/dxhat, in place in dxhat (``ops.norm``'s formula)."""
    scale = 1.0 / xhat.shape[1]
    mean_d = _row_sums(dxhat, scale)
    mean_dx = np.einsum("ij,ij->i", dxhat, xhat)[:, None] * scale
    dxhat -= mean_d
    dxhat -= xhat * mean_dx
    dxhat *= invstd


def _affine(y, xhat, gamma, beta):
    """y = xhat * gamma + beta in place (either may be None)."""
    if gamma is not None:
        np.multiply(xhat, gamma, out=y)
    else:
        y[...] = xhat
    if beta is not None:
        y += beta


def _channel_rows(a):
    """(N, C, ...) -> (C, N*...), a view when the memory is channel-major."""
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


def _from_channel_rows(a2, shape):
    """Inverse of _channel_rows: (C, N*...) -> (N, C, ...) as a view."""
    return np.moveaxis(a2.reshape((shape[1], shape[0]) + tuple(shape[2:])), 0, 1)


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``ops.norm.batch_norm_forward`` on the (C, M) channel rows of x."""
    C = x.shape[1]
    x2 = _channel_rows(x)
    M = x2.shape[1]
    gamma = gamma.reshape(C, 1) if gamma is not None else None
    beta = beta.reshape(C, 1) if beta is not None else None
    y = np.empty(x2.shape, x2.dtype)
    stats = np.empty((3, C, 1), dtype=x2.dtype)  # invstd, mean, variance
    if training:
        xs = np.empty(x2.shape, x2.dtype)  # x - mean: xhat before its scale
    else:
        stats[0] = 1.0 / np.sqrt(running_var.reshape(C, 1) + eps)
        stats[1] = running_mean.reshape(C, 1)
        xs = x2

    def rows(r):
        # y = a xs + b with a = gamma / sqrt(var + eps), one pass: in training xs = x - mean
        # and b = beta, so xhat itself is never written; in evaluation the statistics are
        # fixed, xs = x and b = beta - mean a (backward then needs x, not xhat).
        if training:
            _center_rows(x2[r], eps, xs[r], stats[:, r])
        a = stats[0, r] if gamma is None else stats[0, r] * gamma[r]
        b = None if beta is None else beta[r]
        if not training:
            b = -stats[1, r] * a if b is None else b - stats[1, r] * a
        np.multiply(xs[r], a, out=y[r])
        if b is not None:
            y[r] += b
    parallel.for_rows(rows, C, x2.size)
    if training and running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * stats[1, :, 0]
        running_var *= 1.0 - momentum
        running_var += (momentum * M / (M - 1)) * stats[2, :, 0]
    return _from_channel_rows(y, x.shape), (xs, stats[0], stats[1], gamma, training, x.shape)


def batch_norm_backward(g, cache, needs):
    """``ops.norm.batch_norm_backward`` on the (C, M) channel rows of g."""
    xs, invstd_all, mean, gamma, training, shape = cache
    g2 = _channel_rows(g)
    C, M = g2.shape
    need_x, need_gamma, need_beta = needs
    gx2 = np.empty(g2.shape, g2.dtype) if need_x else None
    ggamma = np.empty(C, g2.dtype) if need_gamma else None
    gbeta = np.empty(C, g2.dtype) if need_beta else None

    def rows(r):
        # gamma is one number per row here, so the general formula factors as
        #   dL/dx = k g - k sum(g) / M - xhat (k sum(g xhat) / M),   k = gamma / sqrt(var + eps),
        # and sum(g) and sum(g xhat) are dL/dbeta and dL/dgamma: four passes over the rows
        # fewer than forming dxhat = g gamma first (layer norm's per-column gamma cannot).
        # sum(g xhat) = sum(g xs) / sqrt(var + eps) from the saved xs = x - mean (training);
        # in evaluation xs = x, so the mean comes off as mean sum(g), and dL/dx = k g.
        g, invstd = g2[r], invstd_all[r]
        sum_g = _row_sums(g)
        if training or need_gamma:
            sum_gx = np.einsum("ij,ij->i", g, xs[r])[:, None]
            if not training:
                sum_gx -= mean[r] * sum_g
            sum_gx *= invstd
        if need_gamma:
            ggamma[r] = sum_gx[:, 0]
        if need_beta:
            gbeta[r] = sum_g[:, 0]
        if need_x:
            k = invstd if gamma is None else invstd * gamma[r]
            np.multiply(g, k, out=gx2[r])
            if training:  # xhat (k sum(g xhat) / M) = xs (k invstd sum(g xhat) / M)
                gx2[r] -= xs[r] * (k * invstd * sum_gx * (1.0 / M))
                gx2[r] -= k * sum_g * (1.0 / M)
    parallel.for_rows(rows, C, g2.size)
    return (_from_channel_rows(gx2, shape) if need_x else None), ggamma, gbeta


def layer_norm_forward(x, weight, bias, normalized_ndim, eps):
    """``ops.norm.layer_norm_forward`` on the (rows, D) matrix of x."""
    param_shape = x.shape[x.ndim - normalized_ndim:]
    D = int(np.prod(param_shape))
    x2 = x.reshape(-1, D)
    xhat, y = np.empty(x2.shape, x2.dtype), np.empty(x2.shape, x2.dtype)
    stats = np.empty((3, x2.shape[0], 1), dtype=x2.dtype)
    weight = weight.reshape(1, D) if weight is not None else None
    bias = bias.reshape(1, D) if bias is not None else None

    def rows(r):  # the weight and bias are per feature (column): the same for every block
        _center_rows(x2[r], eps, xhat[r], stats[:, r])
        xhat[r] *= stats[0, r]  # backward reads xhat several times: store it scaled
        _affine(y[r], xhat[r], weight, bias)
    parallel.for_rows(rows, x2.shape[0], x2.size)
    return y.reshape(x.shape), (xhat, stats[0], weight, x.shape, param_shape)


def layer_norm_backward(g, cache, needs):
    """``ops.norm.layer_norm_backward`` on the (rows, D) matrix of g."""
    xhat, invstd, weight, shape, param_shape = cache
    g2 = g.reshape(xhat.shape)
    need_x, need_w, need_b = needs
    gx2 = np.empty(g2.shape, g2.dtype) if need_x else None

    def rows(r):  # returns this block's share of the column sums dL/dweight, dL/dbias
        if need_x:
            _affine(gx2[r], g2[r], weight, None)
            _normalize_rows_backward(gx2[r], xhat[r], invstd[r])
        # column sums: einsum without the product array, a vector-matrix product
        gw = np.einsum("ij,ij->j", g2[r], xhat[r]) if need_w else None
        gb = np.ones(g2[r].shape[0], dtype=g2.dtype) @ g2[r] if need_b else None
        return gw, gb
    parts = parallel.for_rows(rows, g2.shape[0], g2.size)
    gw = sum(p[0] for p in parts) if need_w else None
    gb = sum(p[1] for p in parts) if need_b else None
    return ((gx2.reshape(shape) if need_x else None),
            gw.reshape(param_shape) if need_w else None,
            gb.reshape(param_shape) if need_b else None)
