"""Naive loop references for the op tests: convolution and pooling written straight from their
definitions, one output position at a time (slow, but nothing to get wrong)."""
import numpy as np


def conv_reference(x, w, b, stride, padding, dilation, groups):
    """y[n, o, i, j] = b[o] + sum_{c in group(o), ki, kj} w[o, c, ki, kj] xpad[n, c, i s + ki d, j s + kj d]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for o in range(O):
        g = o // (O // groups)
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[:, g * Cg:(g + 1) * Cg, i * sh:i * sh + dh * (KH - 1) + 1:dh,
                           j * sw:j * sw + dw * (KW - 1) + 1:dw]
                y[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + (b[o] if b is not None else 0)
    return y


def pool_reference(x, kernel, stride, padding, reduce):
    """y[n, c, i, j] = reduce over the window at (i s - p, j s - p) of x padded with -inf
    (reduce='max') or zeros (reduce='mean', the padding counted as PyTorch's default does)."""
    (kh, kw), (sh, sw) = np.broadcast_to(kernel, 2), np.broadcast_to(stride, 2)  # an int or a pair
    fill = -np.inf if reduce == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=fill)
    Ho, Wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.empty(x.shape[:2] + (Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            y[:, :, i, j] = getattr(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], reduce)(axis=(2, 3))
    return y
