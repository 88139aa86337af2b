"""Pooling on NCHW arrays: max and average over k x k windows, built on the convolution's
padded channel-major copy and its im2col/col2im windows (see ``conv``)."""
import numpy as np

from ..kernels import pool as fast, reference_enabled
from ..tensor import Function
from .conv import _check_input, _pair, _window, col2im, conv_out_size, im2col, pad_channels_first


def _geometry(fn, x, kernel_size, stride, padding):
    """Checked pooling parameters as pairs, and the output size: (k, s, p, (Ho, Wo));
    the stride defaults to the window size."""
    _check_input(x, fn)
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride if stride is not None else kernel_size, "stride")
    p = _pair(padding, "padding")
    H, W = x.shape[2:]
    return k, s, p, (conv_out_size(H, k[0], s[0], p[0], 1), conv_out_size(W, k[1], s[1], p[1], 1))


class MaxPool2d(Function):
    """y[n, c, i, j] = max over the k x k window at (i*s - p, j*s - p) (padding is -inf).

    Forward keeps, per output, which window offset won (ties go to the first); backward adds
    g to that input position with one slice-add per kernel offset. NumPy arrays with windows
    that do not overlap (stride >= kernel, no padding) take ``kernels.pool`` instead.
    """

    def forward(self, x, kernel_size, stride=None, padding=0):
        xp = self.xp
        k, s, p, (Ho, Wo) = _geometry("max_pool2d", x, kernel_size, stride, padding)
        self.k, self.s, self.x_shape = k, s, x.shape
        self.fast = isinstance(x, np.ndarray) and not reference_enabled() and fast.non_overlapping(k, s, p)
        if self.fast:
            y, self.cache = fast.max_pool2d_forward(x, k, s, (Ho, Wo))
            return y
        N, C = x.shape[:2]
        xt = pad_channels_first(xp, x, *p, value=-xp.inf) if p != (0, 0) else x.transpose(1, 0, 2, 3)
        y = None
        self.arg = xp.zeros((C, N, Ho, Wo), dtype=xp.int16)
        for ki in range(k[0]):
            for kj in range(k[1]):
                win = xt[:, :, _window(ki, s[0], 1, Ho), _window(kj, s[1], 1, Wo)]
                if y is None:
                    y = win.copy()
                    continue
                better = win > y
                y = xp.where(better, win, y)
                self.arg[better] = ki * k[1] + kj
        self.p, self.padded_hw = p, xt.shape[2:]
        return xp.ascontiguousarray(y).transpose(1, 0, 2, 3)

    def backward(self, g):
        if self.fast:
            return fast.max_pool2d_backward(g, self.cache, self.x_shape, self.k, self.s)
        xp = self.xp
        N, C, H, W = self.x_shape
        gt = g.transpose(1, 0, 2, 3)
        (KH, KW), (Ho, Wo) = self.k, gt.shape[2:]
        gx = xp.zeros((C, N) + tuple(self.padded_hw), dtype=g.dtype)
        for ki in range(KH):
            for kj in range(KW):
                gx[:, :, _window(ki, self.s[0], 1, Ho), _window(kj, self.s[1], 1, Wo)] += \
                    gt * (self.arg == ki * KW + kj)
        ph, pw = self.p
        return xp.ascontiguousarray(gx[:, :, ph:ph + H, pw:pw + W]).transpose(1, 0, 2, 3)


class AvgPool2d(Function):
    """y[n, c, i, j] = mean of the k x k window (zero padding counted, as PyTorch's default);
    dL/dx = each window's g / (k*k) spread back over the window."""

    def forward(self, x, kernel_size, stride=None, padding=0):
        xp = self.xp
        k, s, p, (Ho, Wo) = _geometry("avg_pool2d", x, kernel_size, stride, padding)
        xt = pad_channels_first(xp, x, *p)
        cols = im2col(xp, xt, k, s, (1, 1), (Ho, Wo))
        self.k, self.s, self.p, self.x_shape, self.padded_hw = k, s, p, x.shape, xt.shape[2:]
        y = cols.mean(axis=(1, 2))
        return xp.ascontiguousarray(y).transpose(1, 0, 2, 3)

    def backward(self, g):
        xp = self.xp
        N, C, H, W = self.x_shape
        KH, KW = self.k
        gt = g.transpose(1, 0, 2, 3) * (1.0 / (KH * KW))
        cols = xp.broadcast_to(gt[:, None, None], (C, KH, KW) + gt.shape[1:])
        gx = col2im(xp, cols, self.padded_hw, self.s, (1, 1))
        ph, pw = self.p
        return xp.ascontiguousarray(gx[:, :, ph:ph + H, pw:pw + W]).transpose(1, 0, 2, 3)
