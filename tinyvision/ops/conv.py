"""Convolution on NCHW arrays, by im2col + GEMM (pooling, which reuses its windows, is in ``pool``).

    y[n, o, i, j] = b[o] + sum_{c in group(o), ki, kj} W[o, c, ki, kj] * xpad[n, c, i*s + ki*d, j*s + kj*d]

Four steps, forward and backward:

    pad     x (N, C, H, W) -> xpad (C, N, Hp, Wp), zero-padded, channel-major
    im2col  xpad -> cols (C*KH*KW, N*Ho*Wo): row (c, ki, kj) is the input seen through
            kernel offset (ki, kj), cols[(c, ki, kj), (n, i, j)] = xpad[c, n, i*s + ki*d, j*s + kj*d]
    GEMM    Y = W2 @ cols per group, W2 = W as (O, C/groups*KH*KW)      -> y (N, O, Ho, Wo)
    col2im  the adjoint of im2col: each column added back into the window it came from

    dL/dW2 = G @ cols^T,   dL/dx = col2im(W2^T @ G) without the padding,   dL/db = sum of G

with G = dL/dy as (O, N*Ho*Wo). Channel-major memory (C, N, ...) is what the GEMM produces,
so outputs and input gradients are (N, C, H, W) views of it; the next layer's copy then reads
whole rows.

This file is the reference path: NumPy-API code that runs as written on NumPy and CuPy. On
NumPy arrays Conv2d runs ``tinyvision.kernels.conv`` instead, the same four steps with
memory layouts and threads chosen for a CPU, unless ``tv.use_reference_kernels()`` is on;
both give the same results (tests/test_conv_paths.py).
"""
import numpy as np

from .. import backend
from ..kernels import conv as fast
from ..kernels import reference_enabled
from ..tensor import Function


def _pair(v, name):
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return v


def conv_out_size(n, k, stride, padding, dilation):
    """Output length of a convolution: floor((n + 2p - d (k - 1) - 1) / s) + 1."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def pad_channels_first(xp, x, ph, pw, value=0.0):
    """(N, C, H, W) -> padded (C, N, H + 2ph, W + 2pw), the border filled with ``value``."""
    N, C, H, W = x.shape
    xt = xp.full((C, N, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xt[:, :, ph:ph + H, pw:pw + W] = x.transpose(1, 0, 2, 3)
    return xt


def _window(k, stride, dilation, out):
    """The slice of a padded axis that kernel offset k reads for all ``out`` outputs."""
    start = k * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)


def im2col(xp, xt, kernel, stride, dilation, out_hw):
    """xt (C, N, Hp, Wp) -> cols (C, KH, KW, N, Ho, Wo); cols[c, ki, kj] is the input seen
    through kernel offset (ki, kj): one strided slice copy per offset."""
    (KH, KW), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_hw
    C, N = xt.shape[:2]
    cols = xp.empty((C, KH, KW, N, Ho, Wo), dtype=xt.dtype)
    for ki in range(KH):
        for kj in range(KW):
            cols[:, ki, kj] = xt[:, :, _window(ki, sh, dh, Ho), _window(kj, sw, dw, Wo)]
    return cols


def col2im(xp, cols, padded_hw, stride, dilation):
    """Adjoint of im2col: cols (C, KH, KW, N, Ho, Wo) -> (C, N, Hp, Wp), summing the
    contributions of overlapping windows (each slice-add writes distinct elements)."""
    C, KH, KW, N, Ho, Wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = xp.zeros((C, N) + tuple(padded_hw), dtype=cols.dtype)
    for ki in range(KH):
        for kj in range(KW):
            out[:, :, _window(ki, sh, dh, Ho), _window(kj, sw, dw, Wo)] += cols[:, ki, kj]
    return out


def conv2d_forward(x, weight, stride, padding, dilation, groups, out_hw):
    """The reference forward: y (N, O, Ho, Wo) without bias, and what the backward needs.
    The columns are not kept (for a ResNet they would take more memory than the activations):
    the backward rebuilds them from xpad."""
    xp = backend.array_module(x)
    O, Cg, KH, KW = weight.shape
    xpad = pad_channels_first(xp, x, *padding)
    cols = im2col(xp, xpad, (KH, KW), stride, dilation, out_hw)
    y = weight.reshape(groups, O // groups, -1) @ cols.reshape(groups, Cg * KH * KW, -1)
    return y.reshape((O, x.shape[0]) + tuple(out_hw)).transpose(1, 0, 2, 3), \
        (x.shape, xpad, weight, stride, padding, dilation, groups, out_hw)


def conv2d_backward(ctx, g, need_x, need_w):
    """The reference backward: (dL/dx (N, C, H, W) or None, dL/dW like W or None) for the
    output gradient g (N, O, Ho, Wo)."""
    (N, C, H, W), xpad, weight, stride, (ph, pw), dilation, groups, out_hw = ctx
    xp = backend.array_module(g)
    O, Cg, KH, KW = weight.shape
    G2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(groups, O // groups, -1)
    gx = gw = None
    if need_w:
        cols = im2col(xp, xpad, (KH, KW), stride, dilation, out_hw)
        gw = (G2 @ cols.reshape(groups, Cg * KH * KW, -1).swapaxes(1, 2)).reshape(weight.shape)
    if need_x:
        gcols = weight.reshape(groups, O // groups, -1).swapaxes(1, 2) @ G2
        gxpad = col2im(xp, gcols.reshape((C, KH, KW, N) + tuple(out_hw)), xpad.shape[2:], stride, dilation)
        gx = xp.ascontiguousarray(gxpad[:, :, ph:ph + H, pw:pw + W]).transpose(1, 0, 2, 3)
    return gx, gw


def _check_input(x, name, channels=None):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input of shape (N, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} input channels (N, {channels}, H, W), "
                         f"got input of shape {tuple(x.shape)}")


class Conv2d(Function):
    """2-D cross-correlation, as in every deep-learning library (the formula above).

    Shapes: x (N, C, H, W), W (O, C/groups, KH, KW), b (O,) -> y (N, O, Ho, Wo),
    Ho = floor((H + 2p - d (KH - 1) - 1) / s) + 1 (likewise Wo). NumPy arrays take the fast
    CPU kernel (``kernels.conv``) unless the reference path is switched on."""

    def forward(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        O, Cg, KH, KW = weight.shape
        _check_input(x, "conv2d", Cg * groups)
        if O % groups:
            raise ValueError(f"conv2d: {O} output channels are not divisible by groups={groups}")
        H, W = x.shape[2:]
        stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
        dilation = _pair(dilation, "dilation")
        out_hw = (conv_out_size(H, KH, stride[0], padding[0], dilation[0]),
                  conv_out_size(W, KW, stride[1], padding[1], dilation[1]))
        if min(out_hw) < 1:
            raise ValueError(f"conv2d: input {H}x{W} is too small for kernel {KH}x{KW} with "
                             f"padding {padding} and dilation {dilation}")
        use_fast = isinstance(x, np.ndarray) and not reference_enabled()
        forward, self.backward_of = ((fast.conv2d_forward, fast.conv2d_backward) if use_fast
                                     else (conv2d_forward, conv2d_backward))
        y, self.saved = forward(x, weight, stride, padding, dilation, groups, out_hw)
        if bias is not None:
            y += bias.reshape(1, O, 1, 1)
        return y

    def backward(self, g):
        need = self.needs_input_grad
        gx, gw = self.backward_of(self.saved, g, need[0], need[1])
        gb = g.sum(axis=(0, 2, 3)) if len(need) > 2 and need[2] else None
        return gx, gw, gb


class ConvTranspose2d(Function):
    """Transposed convolution (the adjoint of Conv2d with respect to its input), used by
    decoders to upsample:

        y = col2im(W2^T @ x2),   x2 = x as (C_in, N*H*W),  W (C_in, C_out/groups, KH, KW)

    Output size: Ho = (H - 1) s - 2p + d (KH - 1) + output_padding + 1.
    Backward is a plain convolution of g: dL/dx = W2 @ im2col(g), dL/dW = x2 @ im2col(g)^T.
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        xp = self.xp
        Cin, Cog, KH, KW = weight.shape
        _check_input(x, "conv_transpose2d", Cin)
        if Cin % groups:
            raise ValueError(f"conv_transpose2d: {Cin} input channels are not divisible by groups={groups}")
        N, _, H, W = x.shape
        s, p = _pair(stride, "stride"), _pair(padding, "padding")
        d, op = _pair(dilation, "dilation"), _pair(output_padding, "output_padding")
        Ho = (H - 1) * s[0] - 2 * p[0] + d[0] * (KH - 1) + op[0] + 1
        Wo = (W - 1) * s[1] - 2 * p[1] + d[1] * (KW - 1) + op[1] + 1
        self.stride, self.padding, self.dilation, self.groups = s, p, d, groups
        self.kernel, self.in_hw, self.weight = (KH, KW), (H, W), weight
        self.padded_hw = (Ho + 2 * p[0], Wo + 2 * p[1])
        self.x2 = xp.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(groups, Cin // groups, -1)
        cols = weight.reshape(groups, Cin // groups, -1).swapaxes(1, 2) @ self.x2
        out = col2im(xp, cols.reshape(Cog * groups, KH, KW, N, H, W), self.padded_hw, s, d)
        out = out[:, :, p[0]:p[0] + Ho, p[1]:p[1] + Wo]
        if bias is not None:
            out = out + bias.reshape(-1, 1, 1, 1)
        return xp.ascontiguousarray(out).transpose(1, 0, 2, 3)

    def backward(self, g):
        xp, G = self.xp, self.groups
        Cin, Cog, KH, KW = self.weight.shape
        N = g.shape[0]
        gt = pad_channels_first(xp, g, *self.padding)
        # The padded output is larger than the last window reaches when output_padding > 0;
        # im2col reads only the windows, which is exactly the adjoint of the forward col2im.
        cols = im2col(xp, gt, self.kernel, self.stride, self.dilation, self.in_hw)
        cols = cols.reshape(G, Cog * KH * KW, -1)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = (self.weight.reshape(G, Cin // G, -1) @ cols).reshape((Cin, N) + self.in_hw)
            gx = xp.ascontiguousarray(gx).transpose(1, 0, 2, 3)
        if self.needs_input_grad[1]:
            gw = (self.x2 @ cols.swapaxes(1, 2)).reshape(self.weight.shape)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb
