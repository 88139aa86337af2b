"""The fast CPU convolution: the same Conv2d as ``ops/conv.py`` (pad -> im2col -> GEMM ->
col2im), computed with memory layouts that make every im2col copy contiguous, in column
blocks that stay in cache, spread over threads.

    y, ctx = conv2d_forward(x, weight, stride, padding, dilation, groups, out_hw)
    dx, dw = conv2d_backward(ctx, dy, need_x, need_w)

x (N, C, H, W), weight (O, C/groups, KH, KW) -> y (N, O, Ho, Wo) without the bias; dy like y,
dx like x, dw like weight (None where not needed). NumPy arrays only. Outputs and input
gradients are (N, C, H, W) views of (C, N, H, W) memory, the order the GEMM produces: the next
layer reads its channel rows without a transposing copy.

Which layout a convolution takes:
- stride 1, output size = input size ("same": ResNet's 3x3/padding-1 and 1x1 layers):
  ``SameLayout``, the taps are shifts of the input's own channel-major rows;
- other overlapping windows (stride 1 that shrinks, ResNet's stride-2 3x3): ``FlatLayout``,
  zero-padded images stacked into one long row per channel ("planes"; s*s polyphase planes
  for stride s), on which every tap is again a constant shift;
- non-overlapping windows (k d <= s on both axes: a ViT's patch embedding, 1x1 stride-2
  shortcuts): the strided im2col, which copies each input at most once, images split over threads.

The flat layouts run in column blocks of about 4 MB (``_chunks``), each copied, multiplied and
forgotten before the next, handed to whichever thread is free (``parallel.map_blocks``); each
block returns its own share of dW, added up in block order, so results do not depend on timing.
The measurements behind these choices: docs/performance.md, "Convolution kernels".
"""
import threading

import numpy as np

from .. import parallel

_workspaces = {}


def workspace(role, shape, dtype):
    """A scratch array of ``shape`` for ``role`` ('cols', 'grad_cols'), reused across calls,
    one per thread: a fresh array of column size costs more in page faults than the copy
    into it. Its contents are garbage; the caller overwrites all of it."""
    size = 1
    for n in shape:
        size *= n
    key = (role, np.dtype(dtype), threading.get_ident())
    buf = _workspaces.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        _workspaces[key] = buf
    return buf[:size].reshape(shape)


BLOCK_BYTES = 2**22  # one column block's size: stays in the CPU's caches between copy and GEMM


def _chunks(length, rows, itemsize, align=1):
    """Column blocks [lo, hi) of the flat axis, each (rows x block) about BLOCK_BYTES (at
    least 1024 and at most 32768 columns). Their number is a multiple of the thread count and
    their sizes differ by one ``align`` at most, so that the threads run out of blocks together;
    blocks start and end at multiples of ``align`` (``SameLayout``: image rows)."""
    units = length // align
    block = max(1, max(1024, min(32768, BLOCK_BYTES // (rows * itemsize))) // align)
    threads = parallel.get_num_threads()
    count = -(-units // block)
    count = min(-(-count // threads) * threads, units) if count > 1 else 1
    edges = [i * units // count * align for i in range(count)] + [length]
    return list(zip(edges[:-1], edges[1:]))


def write_framed(grid, top, left, src):
    """grid[:, :, top:top + h, left:left + w] = src, and zeros on the rest of grid (the frame
    around that window); src (R, N, h, w), grid (R, N, Hs, Ws), split over threads by R.
    Cheaper than zero-filling a reused buffer and copying: the frame is a few percent of it."""
    h, w = src.shape[2:]

    def fill(r):
        g = grid[r]
        g[:, :, :top] = 0
        g[:, :, top + h:] = 0
        g[:, :, top:top + h, :left] = 0
        g[:, :, top:top + h, left + w:] = 0
        g[:, :, top:top + h, left:left + w] = src[r]
    parallel.for_rows(fill, grid.shape[0], grid.size)


class FlatLayout:
    """Where the flat path keeps a convolution's input: the zero-padded images laid out as
    long rows ("planes"), one per channel, on which every kernel tap is a constant shift.

    The images are stacked: image n's padded row r sits at stacked row n*R + r, so that
    neighbouring images share their zero padding (between two images' real rows lie
    R - H >= ph zero rows, enough for the bottom padding of one and the top padding of the
    next); likewise R_w per row. R = s * max(ceil((H + ph) / s), Ho), a multiple of the
    stride: an 8x8 image with padding 1 takes a 9x9 cell instead of 10x10.

    Stride s > 1 (polyphase): the stacked image is split into s*s planes by the position of
    each pixel modulo s, plane (a, b) holding stacked pixel (s i + a, s j + b) at flat index
    i * Ws + j, with Ws = R_w / s. Output (i, j) reads tap (ki, kj) at stacked
    (s i + ki d, s j + kj d), which is plane ((ki d) % s, (kj d) % s) at (i + ki d // s,
    j + kj d // s): again a constant shift of the flat index (a stride-2 3x3 kernel reads four
    planes with 4, 2, 2 and 1 taps). Stride 1 is the case of one plane.

    The output grid is the planes' grid: N * Hs * Ws positions (Hs = R / s), of which the
    valid outputs are i < Ho, j < Wo; the rest is computed and cropped away."""

    align = 1  # column blocks may start anywhere on the flat axis

    def __init__(self, x_shape, kernel, stride, padding, dilation, out_hw):
        N, C, H, W = x_shape
        self.x_shape, self.stride, self.padding, self.out_hw = x_shape, stride, padding, out_hw
        (sh, sw), (ph, pw), (Ho, Wo) = stride, padding, out_hw
        self.grid = (max(-(-(H + ph) // sh), Ho), max(-(-(W + pw) // sw), Wo))  # (Hs, Ws)
        self.length = N * self.grid[0] * self.grid[1]
        # each tap (ki, kj) as (plane, shift); planes numbered by the taps that use them
        self.planes, self.taps = [], []
        for ki in range(kernel[0]):
            for kj in range(kernel[1]):
                (di, a), (dj, b) = divmod(ki * dilation[0], sh), divmod(kj * dilation[1], sw)
                if (a, b) not in self.planes:
                    self.planes.append((a, b))
                self.taps.append((self.planes.index((a, b)), di * self.grid[1] + dj))
        self.tail = max(off for _, off in self.taps)
        # the taps grouped by plane (indices into taps), for the backward's per-plane products,
        # and each plane's taps as read off the shifted output gradient (``gradient_source``)
        self.plane_taps = [[k for k, (q, _) in enumerate(self.taps) if q == p]
                           for p in range(len(self.planes))]
        self.back_taps = [[(0, self.tail - self.taps[k][1]) for k in ks] for ks in self.plane_taps]

    def _pixels(self, plane, grid):
        """The real pixels among plane (a, b)'s entries: (slice of the image's rows, slice of
        its columns), and the window of ``grid`` (C, N, Hs, Ws) that holds them with its first
        (row, column)."""
        (a, b), (sh, sw), (ph, pw) = plane, self.stride, self.padding
        H, W = self.x_shape[2:]
        h0, w0 = (a - ph) % sh, (b - pw) % sw  # first image row (column) landing on this plane
        rows, cols = slice(h0, H, sh), slice(w0, W, sw)
        i0, j0 = (h0 + ph) // sh, (w0 + pw) // sw
        nr, nc = len(range(h0, H, sh)), len(range(w0, W, sw))
        return (rows, cols), grid[:, :, i0:i0 + nr, j0:j0 + nc], (i0, j0)

    def load(self, x):
        """x (N, C, H, W) -> planes (P, C, length + tail): zeros but for the pixels of x."""
        flat = np.empty((len(self.planes), self.x_shape[1], self.length + self.tail), dtype=x.dtype)
        flat[:, :, self.length:] = 0
        xc = x.transpose(1, 0, 2, 3)
        for p, plane in enumerate(self.planes):
            grid = self.as_grid(flat[p])
            (rows, cols), _, (i0, j0) = self._pixels(plane, grid)
            write_framed(grid, i0, j0, xc[:, :, rows, cols])
        return flat

    def as_grid(self, a):
        """The first ``length`` entries of (rows, ...) as (rows, N, Hs, Ws)."""
        return a[:, :self.length].reshape(a.shape[0], self.x_shape[0], *self.grid)

    def unload(self, planes):
        """Adjoint of ``load``: planes (P, C, length) -> (C, N, H, W), the values at the pixels
        (a view for stride 1, else one strided copy per plane)."""
        N, C, H, W = self.x_shape
        if self.stride == (1, 1):
            return self._pixels(self.planes[0], self.as_grid(planes[0]))[1]
        out = (np.zeros if len(self.planes) < self.stride[0] * self.stride[1] else np.empty)(
            (C, N, H, W), dtype=planes.dtype)  # pixels on no tap's plane get zero gradient
        for p, plane in enumerate(self.planes):
            (rows, cols), src, _ = self._pixels(plane, self.as_grid(planes[p]))
            parallel.assign_rows(out[:, :, rows, cols], src)
        return out

    def crop(self, y):
        """y (rows, length) on the output grid -> (rows, N, Ho, Wo), the valid outputs."""
        return parallel.contiguous(self.as_grid(y)[:, :, :self.out_hw[0], :self.out_hw[1]])

    def gradient_source(self, g):
        """The output gradient g (N, O, Ho, Wo) as the backward reads it: on the output grid,
        zero off the valid outputs, stored after ``tail`` zeros, so that ``back_taps`` (the
        flipped shifts tail - off_k) never start before its first entry. Returns it as one
        plane (1, O, tail + length) and the unshifted part (O, length)."""
        O = g.shape[1]
        gshift = np.empty((O, self.tail + self.length), dtype=g.dtype)
        gshift[:, :self.tail] = 0
        write_framed(self.as_grid(gshift[:, self.tail:]), 0, 0, g.transpose(1, 0, 2, 3))
        return gshift[None], gshift[:, self.tail:]

    def columns(self, planes, taps, lo, hi, buf):
        """Columns lo..hi of the flat im2col: cols[c, k, q - lo] = planes[p_k][c, q + off_k] for
        the taps (p_k, off_k), written into the front of the 1-D ``buf`` (so that cols is
        contiguous and reshapes for the GEMM without a copy)."""
        n = hi - lo
        cols = buf[:planes[0].shape[0] * len(taps) * n].reshape(-1, len(taps), n)
        for k, (p, off) in enumerate(taps):
            cols[:, k] = planes[p][:, lo + off:hi + off]
        return cols


class SameLayout:
    """Where the flat path reads a stride-1 "same" convolution's input (output size = input
    size, i.e. 2 p = d (K - 1) on both axes): the input itself, channel-major, as rows
    X[c, q], q = (n H + i) W + j, without padding.

    Tap (ki, kj) of output q reads pixel (i + dv, j + dh), dv = ki d - p (dh likewise), which
    is X[c, q + dv W + dh]: a constant shift, so the tap's columns are again a contiguous run
    of X per block (all taps of a block in one strided copy, see ``columns``). Where that
    pixel lies outside its image, the shifted index has run into a neighbouring row or image
    (or off either end of the batch) instead of into padding, and the copied entries are
    overwritten with zeros: for a tap with dv = -1, the first row of every image; with
    dh = +1, the last column of every row. Blocks start at image rows (``align`` = W), so these
    are strided slices of the block. Zeros are written, not multiplied in by a 0/1 mask, so a
    NaN or inf in one image cannot leak into its neighbours' borders.

    Against ``FlatLayout`` this needs no copy of x, produces its output directly in the final
    (O, N, H, W) array (no crop) and computes no outputs at padding positions. The backward,
    again a convolution of the output gradient G, reads G the same way with the shifts
    negated (``back_taps``)."""

    def __init__(self, x_shape, kernel, padding, dilation):
        N, C, H, W = x_shape
        self.x_shape, self.hw, self.length = x_shape, (H, W), N * H * W
        self.align = W
        dvs = [ki * dilation[0] - padding[0] for ki in range(kernel[0])]
        dhs = [kj * dilation[1] - padding[1] for kj in range(kernel[1])]
        # one plane (the input); its taps are the kernel's row and column offsets, all of them
        self.taps = (dvs, dhs)
        self.plane_taps = [list(range(kernel[0] * kernel[1]))]
        self.back_taps = [([-d for d in dvs], [-d for d in dhs])]

    def load(self, x):
        """x (N, C, H, W) -> (1, C, length): a view of x's memory when it is channel-major
        (as a convolution, batch norm or ReLU leaves it), else one copy."""
        return self.rows(x)[None]

    @staticmethod
    def rows(a):
        """(N, C, H, W) -> (C, N*H*W) rows, copied (over threads) only if a is not channel-major."""
        return parallel.reshape(a.transpose(1, 0, 2, 3), (a.shape[1], -1))

    def crop(self, y):
        """y (O, length) -> (O, N, H, W): every position is an output, nothing to crop."""
        return y.reshape(y.shape[0], self.x_shape[0], *self.hw)

    def unload(self, planes):
        """Input gradient (1, C, length) -> (C, N, H, W), a view."""
        return self.crop(planes[0])

    def gradient_source(self, g):
        """The output gradient g (N, O, H, W) as rows (1, O, length) and (O, length)."""
        g2 = self.rows(g)
        return g2[None], g2

    def columns(self, planes, taps, lo, hi, buf):
        """Columns lo..hi (whole image rows) for the shifts ``taps`` = (row offsets, column
        offsets): cols[c, (ki, kj), q - lo] = X[c, q + dv_ki W + dh_kj] where that pixel lies
        in q's image, else 0; written into the front of ``buf``. A 1x1 kernel's columns are
        the input's own rows (a view, no copy)."""
        (dvs, dhs), (H, W), L = taps, self.hw, self.length
        src, n = planes[0], hi - lo
        C, KH, KW = src.shape[0], len(dvs), len(dhs)
        if KH == KW == 1 and dvs[0] == dhs[0] == 0:
            return src[:, None, lo:hi]
        cols = buf[:C * KH * KW * n].reshape(C, KH, KW, n)
        first_shift = dvs[0] * W + dhs[0]  # tap (0, 0); the backward's shifts descend
        if lo + min(dvs) * W + min(dhs) >= 0 and hi + max(dvs) * W + max(dhs) <= L:
            # every tap's source inside X: all K*K copies as one, from a strided view whose
            # (ki, kj) axes step by the taps' shifts (fewer NumPy calls, fewer GIL hand-overs)
            s = src.strides[1]
            step_v = (dvs[1] - dvs[0]) * W * s if KH > 1 else 0
            step_h = (dhs[1] - dhs[0]) * s if KW > 1 else 0
            cols[...] = np.lib.stride_tricks.as_strided(
                src[:, lo + first_shift:], (C, KH, KW, n), (src.strides[0], step_v, step_h, s))
        else:
            self._columns_clipped(src, taps, lo, hi, cols)
        grid = cols.reshape(C, KH, KW, n // W, W)  # (..., block rows, columns)
        first = lo // W  # the block's first row is row first % H of its image
        for ki, dv in enumerate(dvs):  # image rows i with i + dv outside [0, H)
            for i in (range(min(-dv, H)) if dv < 0 else range(max(H - dv, 0), H)):
                grid[:, ki, :, (i - first) % H::H] = 0
        for kj, dh in enumerate(dhs):  # columns j with j + dh outside [0, W)
            if dh < 0:
                grid[:, :, kj, :, :min(-dh, W)] = 0
            elif dh > 0:
                grid[:, :, kj, :, max(W - dh, 0):] = 0
        return cols.reshape(C, KH * KW, n)

    def _columns_clipped(self, src, taps, lo, hi, cols):
        """The copies of ``columns`` for a block at either end of the batch, one per tap:
        [a, b) is the part of the block whose source index lies in [0, L). Outside it the tap
        reads above the first image's top or below the last one's bottom (or beside them):
        positions the masks zero anyway."""
        (dvs, dhs), W, L, n = taps, self.hw[1], self.length, hi - lo
        for ki, dv in enumerate(dvs):
            for kj, dh in enumerate(dhs):
                shift = dv * W + dh
                a = min(max(-(lo + shift), 0), n)
                b = max(min(L - lo - shift, n), a)
                cols[:, ki, kj, a:b] = src[:, lo + shift + a:lo + shift + b]


class _Saved:
    """What ``conv2d_backward`` needs of a forward: the geometry, the weight, and the input
    as the path keeps it (the layout's planes, or the padded (C, N, Hp, Wp) copy)."""

    def __init__(self, x_shape, weight, stride, padding, dilation, groups, out_hw):
        self.x_shape, self.weight, self.groups, self.out_hw = x_shape, weight, groups, out_hw
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.kernel = weight.shape[2:]
        self.layout = self.planes = self.xt = None  # flat layouts: layout, planes; else xt


def conv2d_forward(x, weight, stride, padding, dilation, groups, out_hw):
    """y (N, O, Ho, Wo) = conv2d(x, weight) without bias, and the context for the backward."""
    ctx = _Saved(x.shape, weight, stride, padding, dilation, groups, out_hw)
    O, Cg, KH, KW = weight.shape
    w2 = weight.reshape(groups, O // groups, -1)
    if stride != (1, 1) and all(k * d <= s for k, d, s in zip(ctx.kernel, dilation, stride)):
        return _strided_forward(ctx, x, w2), ctx
    if stride == (1, 1) and tuple(out_hw) == x.shape[2:]:
        lay = SameLayout(x.shape, ctx.kernel, padding, dilation)
    else:
        lay = FlatLayout(x.shape, ctx.kernel, stride, padding, dilation, out_hw)
    ctx.layout, ctx.planes = lay, lay.load(x)
    y = np.empty((groups, O // groups, lay.length), dtype=x.dtype)

    def fill(block):  # one block's columns, multiplied into its own slice of y
        lo, hi = block
        buf = workspace("cols", (Cg * groups * KH * KW * (hi - lo),), x.dtype)
        cols = lay.columns(ctx.planes, lay.taps, lo, hi, buf)
        np.matmul(w2, cols.reshape(groups, Cg * KH * KW, -1), out=y[:, :, lo:hi])
    parallel.map_blocks(fill, _chunks(lay.length, Cg * groups * KH * KW, x.dtype.itemsize, lay.align))
    return lay.crop(y.reshape(O, -1)).transpose(1, 0, 2, 3), ctx


def conv2d_backward(ctx, g, need_x, need_w):
    """(dL/dx (N, C, H, W) or None, dL/dW like the weight or None) for the output gradient g."""
    if not (need_x or need_w):  # a frozen first layer: only its bias (if any) learns
        return None, None
    if ctx.layout is None:
        gx, gw = _strided_backward(ctx, g, need_x, need_w)
    else:
        gx, gw = _flat_backward(ctx, g, need_x, need_w)
    gw = gw.reshape(ctx.weight.shape) if need_w else None
    gx = parallel.contiguous(gx).transpose(1, 0, 2, 3) if need_x else None
    return gx, gw


def _grad_weight(cols, g2):
    """G cols^T per group (G (O, n), cols (rows, n)), computed as (cols G^T)^T: OpenBLAS runs
    this long-reduction product faster with the larger operand on the left."""
    return (cols @ g2.swapaxes(1, 2)).swapaxes(1, 2)


def _flat_backward(ctx, g, need_x, need_w):
    """Blocked backward of the flat layouts, both gradients gathered block by block.

    G, the output gradient on the output grid (zero off the valid outputs), is stored after
    ``tail`` zeros (Gshift[o, tail + t] = G[o, t]). With the taps (plane p_k, shift off_k),
    y[o, t] = sum_{c,k} W[o, c, k] planes[p_k][c, t + off_k]. Substituting u = t + off_k:
        dL/dplanes[p][c, u] = (W'_p @ colsG_p)[c, u],      colsG_p[(o, k), u] = Gshift[o, u + tail - off_k]
        dW[o, c, k]         = (planes[p] @ colsG_p^T)[c, (o, k)]   for the taps k of plane p,
    with W'_p[c, (o, k)] = W[o, c, k] over plane p's taps: the gradient of each plane is itself
    a flat convolution of G (flipped shifts), one im2col copy and one GEMM per plane and block,
    each block writing only its own columns; dW reuses those columns with the plane itself as
    the other operand, so the input's columns are never rebuilt. Where no input gradient is
    wanted (a network's first layer), the input's columns are the cheaper ones for dW: C*K*K
    rows against O*K*K. Each block returns its own share of dW, summed in block order."""
    lay, G = ctx.layout, ctx.groups
    O, Cg, KH, KW = ctx.weight.shape
    C = ctx.x_shape[1]
    L, KK = lay.length, KH * KW
    gsrc, g2 = lay.gradient_source(g)
    g2 = g2.reshape(G, O // G, L)
    # per plane: its taps, their flipped shifts and W'[g, c, (o, k)] = W[g*O/G + o, c, k]
    w4 = ctx.weight.reshape(G, O // G, Cg, KK).transpose(0, 2, 1, 3)
    grads = [(ks, taps, w4[:, :, :, ks].reshape(G, Cg, -1))
             for ks, taps in zip(lay.plane_taps, lay.back_taps)]
    gx = np.empty((len(lay.plane_taps), C, L), dtype=g.dtype) if need_x else None
    rows = max(C, O) * KK

    def run(block):  # one block: its slice of every plane's gradient, its share of dW
        lo, hi = block
        buf = workspace("cols", (rows * (hi - lo),), g.dtype)
        gw = None
        if need_x:
            for p, (ks, taps, wt) in enumerate(grads):
                cols = lay.columns(gsrc, taps, lo, hi, buf).reshape(G, -1, hi - lo)
                np.matmul(wt, cols, out=gx[p].reshape(G, Cg, L)[:, :, lo:hi])
                if need_w:  # (Cg, n) @ (n, O/G * taps) per group -> dW[:, :, :, ks]
                    gwp = _grad_weight(cols, ctx.planes[p][:, lo:hi].reshape(G, Cg, -1))
                    gwp = gwp.reshape(G, Cg, O // G, len(ks)).transpose(0, 2, 1, 3)
                    if len(ks) == KK:  # one plane holds every tap (stride 1)
                        gw = gwp
                    else:
                        gw = np.zeros((G, O // G, Cg, KK), dtype=g.dtype) if gw is None else gw
                        gw[:, :, :, ks] += gwp
        elif need_w:
            cols = lay.columns(ctx.planes, lay.taps, lo, hi, buf)
            gw = _grad_weight(cols.reshape(G, Cg * KK, -1), g2[:, :, lo:hi])
        return gw
    parts = parallel.map_blocks(run, _chunks(L, rows, g.dtype.itemsize, lay.align))
    gw = sum(parts) if need_w else None  # in block order
    return (lay.unload(gx) if need_x else None), gw


def _windows(xt, kernel, stride, dilation, out_hw):
    """The im2col of padded xt (C, N, Hp, Wp) as a strided view (C, KH, KW, N, Ho, Wo),
    [c, ki, kj, n, i, j] = xt[c, n, i s + ki d, j s + kj d]; for non-overlapping windows
    every element of xt appears at most once, so it may also be written through."""
    c, n, r, q = xt.strides
    (sh, sw), (dh, dw) = stride, dilation
    shape = xt.shape[:1] + tuple(kernel) + xt.shape[1:2] + tuple(out_hw)
    return np.lib.stride_tricks.as_strided(xt, shape, (c, dh * r, dw * q, n, sh * r, sw * q))


def _columns(ctx, xt):
    """im2col of xt (C, N, Hp, Wp) into the 'cols' workspace, one strided copy."""
    windows = _windows(xt, ctx.kernel, ctx.stride, ctx.dilation, ctx.out_hw)
    cols = workspace("cols", windows.shape, xt.dtype)
    cols[...] = windows
    return cols


def _padded(x, padding):
    """(N, C, H, W) -> zero-padded (C, N, H + 2ph, W + 2pw), copied over threads."""
    N, C, H, W = x.shape
    (ph, pw) = padding
    xt = np.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    write_framed(xt, ph, pw, x.transpose(1, 0, 2, 3))
    return xt


def _strided_forward(ctx, x, w2):
    """Non-overlapping windows: one im2col copy and GEMM per thread's share of the images."""
    N, (Ho, Wo), G = x.shape[0], ctx.out_hw, ctx.groups
    ctx.xt = _padded(x, ctx.padding)
    y = np.empty((G, w2.shape[1], N * Ho * Wo), dtype=x.dtype)

    def fill(images):
        n0, n1, _ = images.indices(N)
        cols = _columns(ctx, ctx.xt[:, images])
        np.matmul(w2, cols.reshape(G, w2.shape[2], -1), out=y[:, :, n0 * Ho * Wo:n1 * Ho * Wo])
    parallel.for_rows(fill, N, ctx.xt.size)
    return y.reshape(-1, N, Ho, Wo).transpose(1, 0, 2, 3)


def _strided_backward(ctx, g, need_x, need_w):
    """Each thread takes its images: their columns again for its share of dW, and W^T G
    written through the windows view into its own images of dL/dxt (windows do not overlap)."""
    G, (Ho, Wo), (ph, pw) = ctx.groups, ctx.out_hw, ctx.padding
    N, C, H, W = ctx.x_shape
    O = ctx.weight.shape[0]
    w2 = ctx.weight.reshape(G, O // G, -1)
    g2 = parallel.contiguous(g.transpose(1, 0, 2, 3)).reshape(G, O // G, -1)
    gxt = np.zeros(ctx.xt.shape, dtype=g.dtype) if need_x else None

    def run(images):
        n0, n1, _ = images.indices(N)
        g_part, gw = g2[:, :, n0 * Ho * Wo:n1 * Ho * Wo], None
        if need_w:
            cols = _columns(ctx, ctx.xt[:, images])
            gw = _grad_weight(cols.reshape(G, w2.shape[2], -1), g_part)
        if need_x:
            gcols = workspace("grad_cols", (G, w2.shape[2], g_part.shape[2]), g.dtype)
            np.matmul(w2.swapaxes(1, 2), g_part, out=gcols)
            win = _windows(gxt[:, images], ctx.kernel, ctx.stride, ctx.dilation, ctx.out_hw)
            win[...] = gcols.reshape(win.shape)
        return gw
    parts = parallel.for_rows(run, N, ctx.xt.size)
    gx = gxt[:, :, ph:ph + H, pw:pw + W] if need_x else None
    return gx, (sum(parts) if need_w else None)
