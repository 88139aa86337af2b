"""Resizing of images as separable linear maps: nearest and bilinear interpolation, and
adaptive average pooling.

Each of these maps an (H, W) image to (Ho, Wo) by acting on rows and columns independently,

    y[n, c] = A x[n, c] B^T,     A (Ho, H) acts on rows, B (Wo, W) on columns,

so one Function serves them all, and its backward is the exact adjoint:

    dL/dx[n, c] = A^T g[n, c] B.

Only the interpolation matrices differ. For output index i along an axis of input length n
and scale r = n / n_out (or 1 / scale_factor when the caller gave one, as PyTorch does):

- nearest:  A[i, min(floor(i r), n - 1)] = 1
- bilinear, align_corners=False (pixel centres aligned):  src = max((i + 0.5) r - 0.5, 0)
- bilinear, align_corners=True (corner pixels aligned):   src = i (n - 1) / (n_out - 1)
  (src = 0 when n_out = 1); then with i0 = floor(src), i1 = min(i0 + 1, n - 1),
  t = src - i0:  A[i, i0] += 1 - t,  A[i, i1] += t
- adaptive average: output i averages rows floor(i n / n_out) .. ceil((i + 1) n / n_out) - 1.

For images the size of CIFAR's the dense matrices cost little (32 x 64 entries per axis) and
turn resizing into two batched matrix products.
"""
import math

import numpy as np

from ..tensor import Function
from .pool import AvgPool2d
from .reduce import Mean


class Separable2d(Function):
    """y = A x B^T over the last two axes of x (..., H, W) -> (..., Ho, Wo)."""

    def forward(self, x, rows, cols):
        xp = self.xp
        self.A = xp.asarray(rows, dtype=x.dtype)
        self.B = xp.asarray(cols, dtype=x.dtype)
        return self.A @ x @ self.B.T

    def backward(self, g):
        return self.A.T @ g @ self.B


def nearest_matrix(n, n_out, scale=None):
    """Nearest-neighbour selection: output i copies input min(floor(i r), n - 1)."""
    r = n / n_out if scale is None else 1.0 / scale
    A = np.zeros((n_out, n))
    src = np.minimum(np.floor(np.arange(n_out) * r).astype(np.int64), n - 1)
    A[np.arange(n_out), src] = 1.0
    return A


def bilinear_matrix(n, n_out, align_corners=False, scale=None):
    """Linear interpolation weights along one axis (coordinate formulas in the module docstring)."""
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = i * ((n - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        r = n / n_out if scale is None else 1.0 / scale
        src = np.maximum((i + 0.5) * r - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    t = src - i0
    A = np.zeros((n_out, n))
    rows = np.arange(n_out)
    np.add.at(A, (rows, i0), 1.0 - t)
    np.add.at(A, (rows, i1), t)
    return A


def adaptive_avg_matrix(n, n_out):
    """Averaging windows of PyTorch's adaptive pooling: floor(i n / n_out) to ceil((i+1) n / n_out)."""
    A = np.zeros((n_out, n))
    for i in range(n_out):
        start, end = (i * n) // n_out, -((-(i + 1) * n) // n_out)
        A[i, start:end] = 1.0 / (end - start)
    return A


def _check_image(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input (N, C, H, W), got {tuple(x.shape)}")


def _size_pair(v, name):
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2 or not all(isinstance(i, int) and i > 0 for i in v):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v!r}")
    return v


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize (N, C, H, W) images to ``size`` (Ho, Wo) or by ``scale_factor`` (Ho =
    floor(H * scale_factor)), with mode 'nearest' or 'bilinear' (PyTorch's conventions)."""
    _check_image(x, "interpolate")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners only applies to mode='bilinear'")
    H, W = x.shape[2:]
    if size is not None:
        (Ho, Wo), scales = _size_pair(size, "size"), (None, None)
    else:
        scales = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        if len(scales) != 2 or not all(s > 0 for s in scales):
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor!r}")
        Ho, Wo = math.floor(H * scales[0]), math.floor(W * scales[1])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor} maps {(H, W)} to an empty image")
    if mode == "nearest":
        rows, cols = nearest_matrix(H, Ho, scales[0]), nearest_matrix(W, Wo, scales[1])
    else:
        ac = bool(align_corners)
        rows, cols = bilinear_matrix(H, Ho, ac, scales[0]), bilinear_matrix(W, Wo, ac, scales[1])
    return Separable2d.apply(x, rows=rows, cols=cols)


def adaptive_avg_pool2d(x, output_size):
    """Average (N, C, H, W) over windows that tile it into ``output_size`` cells (any size).

    Output 1 x 1 is a mean over (H, W); sizes that divide the input are an ordinary average
    pooling with kernel = stride = (H / Ho, W / Wo); other sizes use the overlapping windows
    of ``adaptive_avg_matrix``."""
    _check_image(x, "adaptive_avg_pool2d")
    Ho, Wo = _size_pair(output_size, "output_size")
    H, W = x.shape[2:]
    if (Ho, Wo) == (1, 1):
        return Mean.apply(x, axis=(2, 3), keepdims=True)
    if H % Ho == 0 and W % Wo == 0:
        k = (H // Ho, W // Wo)
        return AvgPool2d.apply(x, kernel_size=k, stride=k, padding=0)
    return Separable2d.apply(x, rows=adaptive_avg_matrix(H, Ho), cols=adaptive_avg_matrix(W, Wo))
