"""Convolution on NCHW arrays, by im2col + GEMM (pooling, which reuses its windows, is in ``pool``).

Layout. The input is first copied once into a zero-padded, channel-major buffer
xt[c, n, h, w] (shape (C, N, Hp, Wp)). im2col then fills cols[c, ki, kj, n, i, j] =
xt[c, n, i*s + ki*d, j*s + kj*d] with one strided slice copy per kernel offset (ki, kj): the
source's innermost axis (w) stays innermost, so every copy streams through memory. The
convolution is one GEMM, W (O, C*K*K) @ cols (C*K*K, N*Ho*Wo), per group.

Backward never keeps cols: for ResNet-20 at batch 128 the columns of all convolutions would
take about 1.4 GB, the padded inputs a ninth of that. The general path recomputes them from
xt; the flat path below rebuilds them only for a layer that wants no dL/dx (otherwise dW
pairs xt with the output gradient's columns).
col2im, the adjoint of im2col, is a K*K loop of slice-adds into a zero buffer; each slice-add
writes distinct elements, so no ``add.at`` (which was 12x slower) is needed.

Outputs and input gradients are returned as (N, C, H, W) views of arrays laid out
(C, N, H, W) in memory: that is the order the GEMM produces, elementwise ops (batch norm,
ReLU, residual adds) keep it, and the next convolution's channel-major copy then reads
contiguous memory. No transpose copy is made on either side of a layer.

Stride 1, the common case, goes further ("flat" im2col). Seen as one long row per channel,
xt_flat[c, q] with q = (n*Hs + h)*Ws + w, every kernel offset is a constant shift
off = ki*d*Ws + kj*d, so the columns for all outputs on the grid are
cols[c, k, q] = xt_flat[c, q + off_k]: K*K contiguous copies of whole rows instead of N*C*Ho
short rows each. Images and rows share their zero padding (``FlatLayout``: an 8x8 image with
padding 1 takes a 9x9 cell, not 10x10). The GEMM then also yields outputs at the
(Hs*Ws - Ho*Wo) positions outside the valid grid (6% more work at 32x32, 27% at 8x8); they
are cropped away, and in backward the gradient there is zero, so they contribute nothing.
The flat axis is processed in blocks whose columns stay in cache (about 4 MB): each block is
copied, multiplied and forgotten before the next, so the columns never travel to main memory
and no large buffer is allocated. Measured on ResNet-20's first stage (batch 128): im2col +
GEMM 17.4 ms for the whole matrix, 11.4 ms in blocks; a ResNet-20 training step went from
1030 to 800 ms with the flat, blocked path. Its backward needs no col2im: the input gradient
is itself a flat convolution of the output gradient (see ``Conv2d._backward_flat``), so it is
built block by block with the same copy-and-GEMM, each block writing only its own columns,
and dL/dW multiplies those same columns by the plane itself: one im2col per block in
backward, not two (ResNet-20 step 812 -> 767 ms, median of 40 alternating steps).

Stride-1 "same" layers (output size = input size: ResNet's 3x3 layers but the downsampling
ones, 1x1 layers) skip the planes altogether (``SameLayout``): the taps are shifts of the
input's own channel-major rows, and the entries where a shift runs out of its image into the
next row or image are zeroed after the copy instead of being read from padding. No copy of x,
no crop of the output or the input gradient, no shifted copy of the output gradient, and no
outputs computed at padding positions: a ResNet-20 training step (batch 128) took 10% less
time (eight alternating pairs of processes), peak memory 620 -> 528 MB; copying a block's
taps in one call instead of one per tap (``SameLayout.columns``) took about 7% more off.

Strided convolutions with overlapping windows (ResNet's stride-2 3x3) take the flat path too,
on polyphase planes: split by pixel position modulo the stride, the input becomes s*s images
on which every tap is again a constant shift (``FlatLayout``). ResNet-20's first stride-2
layer (16 -> 32 channels, 32x32, batch 128) went from 39 to 28 ms forward + backward on one
core (20 -> 17 ms on two), against the strided im2col's stride-2 reads and col2im scatter; the
second (32 -> 64, 16x16) stayed at 12 ms on two cores. Windows that do not
overlap (a ViT's 4x4 stride-4 patches, 1x1 stride-2 shortcuts) keep the strided path: there
im2col copies each input once at most.

Threads. On a multi-core CPU the blocks of the flat path go to whichever thread is free
(``parallel.map_blocks``), each thread with its own column buffer; every block returns its own
share of dW, added up in block order, so the sum does not depend on which thread ran what.
Against fixed halves, the time a thread waited for the other at the end of a convolution went
from about 49 to 15-20 ms per ResNet-20 step (batch 128, two threads; a step took 500-600 ms).
The strided path splits the images over the threads.

Workspaces. The column matrices are the largest temporaries of a CNN (75 MB for a 16-channel
3x3 layer at batch 128, 32x32) and live only until the next GEMM has read them. A fresh array
of that size costs more in page faults than the copy itself (the allocator hands blocks over
32 MB back to the OS on every free and maps them anew: 58 ms against 7 ms for the same im2col
into a reused buffer, measured here). So they are written into one reusable buffer per role,
grown on demand; nothing that outlives the op ever points into it.
"""
import threading

from .. import backend, parallel
from ..tensor import Function

_workspaces = {}


def workspace(xp, role, shape, dtype):
    """A scratch array of ``shape`` for ``role`` ('cols', 'grad_cols'), reused across calls
    (one per thread). Its contents are garbage; the caller overwrites all of it."""
    size = 1
    for n in shape:
        size *= n
    key = (xp.__name__, role, dtype, threading.get_ident())  # one per thread of ``parallel``
    buf = _workspaces.get(key)
    if buf is None or buf.size < size:
        buf = xp.empty(size, dtype=dtype)
        _workspaces[key] = buf
    return buf[:size].reshape(shape)


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
    """(N, C, H, W) -> zero-padded (C, N, H + 2ph, W + 2pw) in one copy."""
    N, C, H, W = x.shape
    xt = xp.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    if ph or pw:
        xt.fill(value)
    parallel.assign_rows(xt[:, :, ph:ph + H, pw:pw + W], x.transpose(1, 0, 2, 3))
    return xt


def _window(k, stride, dilation, out):
    """The slice of a padded axis that kernel offset k reads for all ``out`` outputs."""
    start = k * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)


def im2col(xp, xt, kernel, stride, dilation, out_hw):
    """xt (C, N, Hp, Wp) -> cols (C, KH, KW, N, Ho, Wo); cols[c, ki, kj] is the input seen
    through kernel offset (ki, kj)."""
    (KH, KW), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_hw
    C, N = xt.shape[:2]
    if (KH, KW, sh, sw) == (1, 1, 1, 1) and xt.shape[2:] == (Ho, Wo):
        return xt.reshape(C, 1, 1, N, Ho, Wo)  # 1x1 convolution: the input already is the matrix
    cols = workspace(xp, "cols", (C, KH, KW, N, Ho, Wo), xt.dtype)
    for ki in range(KH):
        rows = _window(ki, sh, dh, Ho)
        for kj in range(KW):
            cols[:, ki, kj] = xt[:, :, rows, _window(kj, sw, dw, Wo)]
    return cols


def col2im(xp, cols, padded_hw, stride, dilation, out=None):
    """Adjoint of im2col: cols (C, KH, KW, N, Ho, Wo) -> (C, N, Hp, Wp), summing the
    contributions of overlapping windows (added into ``out`` when given)."""
    C, KH, KW, N, Ho, Wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    if out is None:
        out = xp.zeros((C, N) + tuple(padded_hw), dtype=cols.dtype)
    for ki in range(KH):
        rows = _window(ki, sh, dh, Ho)
        for kj in range(KW):
            out[:, :, rows, _window(kj, sw, dw, Wo)] += cols[:, ki, kj]
    return out


class FlatLayout:
    """Where the flat path keeps a convolution's input: the zero-padded images laid out as
    long rows ("planes"), one per channel, on which every kernel tap is a constant shift.

    The images are stacked: image n's padded row r sits at stacked row n*R + r, so that
    neighbouring images share their zero padding (between two images' real rows lie
    R - H >= ph zero rows, enough for the bottom padding of one and the top padding of the
    next, since a window reaches at most ph rows past its image's edge); likewise R_w per row.
    R = s * max(ceil((H + ph) / s), Ho), a multiple of the stride: an 8x8 image with padding 1
    takes a 9x9 cell instead of 10x10 (27% fewer columns to copy and multiply; 9% at 16x16,
    6% at 32x32).

    Stride s > 1 (polyphase): the stacked image is split into s*s planes by the position of
    each pixel modulo s, plane (a, b) holding stacked pixel (s i + a, s j + b) at
    (i, j) = flat index i * Ws + j, with Ws = R_w / s. Output (i, j) reads tap (ki, kj) at stacked
    (s i + ki d, s j + kj d), which is plane ((ki d) % s, (kj d) % s) at (i + ki d // s,
    j + kj d // s): again a constant shift of the flat index, so strided convolutions get the
    same contiguous copies as stride 1 (a stride-2 3x3 kernel reads four planes with 4, 2, 2
    and 1 taps). Stride 1 is the case of one plane.

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

    def load(self, xp, x):
        """x (N, C, H, W) -> planes (P, C, length + tail): zeros but for the pixels of x."""
        flat = xp.empty((len(self.planes), self.x_shape[1], self.length + self.tail), dtype=x.dtype)
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

    def unload(self, xp, planes):
        """Adjoint of ``load``: planes (P, C, length) -> (C, N, H, W), the values at the pixels
        (a view for stride 1, else one strided copy per plane)."""
        N, C, H, W = self.x_shape
        if self.stride == (1, 1):
            return self._pixels(self.planes[0], self.as_grid(planes[0]))[1]
        out = (xp.zeros if len(self.planes) < self.stride[0] * self.stride[1] else xp.empty)(
            (C, N, H, W), dtype=planes.dtype)  # pixels on no tap's plane get zero gradient
        for p, plane in enumerate(self.planes):
            (rows, cols), src, _ = self._pixels(plane, self.as_grid(planes[p]))
            parallel.assign_rows(out[:, :, rows, cols], src)
        return out

    def crop(self, y):
        """y (rows, length) on the output grid -> (rows, N, Ho, Wo), the valid outputs."""
        return parallel.contiguous(self.as_grid(y)[:, :, :self.out_hw[0], :self.out_hw[1]])

    def gradient_source(self, xp, g):
        """The output gradient g (N, O, Ho, Wo) as the backward reads it: on the output grid,
        zero off the valid outputs, stored after ``tail`` zeros, so that ``back_taps`` (the
        flipped shifts tail - off_k) never start before its first entry. Returns it as one
        plane (1, O, tail + length) and the unshifted part (O, length)."""
        O = g.shape[1]
        gshift = xp.empty((O, self.tail + self.length), dtype=g.dtype)
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
    size, i.e. 2 p = d (K - 1) on both axes: every 3x3/padding-1 and 1x1 layer of a ResNet):
    the input itself, channel-major, as rows X[c, q], q = (n H + i) W + j, without padding.

    Tap (ki, kj) of output q reads pixel (i + dv, j + dh), dv = ki d - p (dh likewise), which
    is X[c, q + dv W + dh]: a constant shift, so the tap's columns are again a contiguous run
    of X per block (all taps of a block in one strided copy, see ``columns``). Where that
    pixel lies outside its image, the shifted index has run into a neighbouring row or image
    (or off either end of the batch) instead of into padding, and the copied entries are
    overwritten with zeros: for a tap with dv = -1, the first row of every image; with
    dh = +1, the last column of every row. Blocks start at image rows (``align`` = W), so these
    are strided slices of the block, zeroed for all taps of one kernel row (or column) at once.
    Zeros are written, not multiplied in by a 0/1 mask, so a NaN or inf in one image cannot
    leak into its neighbours' borders. (Also exact, and measured: copying through a bitwise
    AND with all-ones/all-zeros words per position. Over ResNet-20's three stages it took the
    same time in sum, faster at 16x16 and slower at 8x8, where NumPy's
    integer AND over rows of 64 channels ran at a quarter of a plain copy's speed.)

    Against ``FlatLayout``'s zero-padded planes this needs no copy of x (the columns read the
    layer's input where it lies), produces its output directly in the final (O, N, H, W)
    array (no crop), and computes no outputs at padding positions: on ResNet-20 (batch 128)
    those grids had 6, 13 and 27% more positions than pixels at 32x32, 16x16 and 8x8, for the
    GEMMs and copies of forward and backward alike. The backward, again a convolution of the
    output gradient G, reads G the same way with the shifts negated (``back_taps``): output
    q = u - (dv, dh) contributes to input u only if it lies inside the image, the same test
    with -dv and -dh."""

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

    def load(self, xp, x):
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

    def unload(self, xp, planes):
        """Input gradient (1, C, length) -> (C, N, H, W), a view."""
        return self.crop(planes[0])

    def gradient_source(self, xp, g):
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
        first_shift, last_shift = dvs[0] * W + dhs[0], dvs[-1] * W + dhs[-1]
        if lo + first_shift >= 0 and hi + last_shift <= L:
            # every tap's source inside X: all K*K copies as one, from a strided view whose
            # (ki, kj) axes step by the taps' shifts. Fewer NumPy calls per block matter more
            # than their cost alone suggests: each call releases and retakes the GIL, and
            # with two threads at work every retake may wait for the other thread. Measured
            # on a 16-channel 3x3 layer's forward (batch 128, two threads): nine copies 11.1
            # ms, one copy 8.9 ms (2 MB blocks); two processes running the same blocks side
            # by side each kept their one-process speed, so the cores were not what was shared.
            s = src.strides[1]
            step_v = (dvs[1] - dvs[0]) * W * s if KH > 1 else 0
            step_h = (dhs[1] - dhs[0]) * s if KW > 1 else 0
            as_strided = backend.array_module(src).lib.stride_tricks.as_strided
            cols[...] = as_strided(src[:, lo + first_shift:], (C, KH, KW, n),
                                   (src.strides[0], step_v, step_h, s))
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


def write_framed(grid, top, left, src):
    """grid[:, :, top:top + h, left:left + w] = src, and zeros on the rest of grid (the frame
    around that window); src (R, N, h, w), grid (R, N, Hs, Ws), split over threads by R.

    This is how the planes and the shifted output gradient are filled, instead of zeros()
    and a copy: zero-filling the whole reused buffer first is one more pass over it, and it
    ran on one core, where the frame is a few percent of it (a 32x32 image in its 33x33
    cell: 6%). Those zero-fills took about 29 ms of an 820 ms ResNet-20 step (batch 128, two
    threads; cProfile), with the other core idle."""
    h, w = src.shape[2:]

    def fill(r):
        g = grid[r]
        g[:, :, :top] = 0
        g[:, :, top + h:] = 0
        g[:, :, top:top + h, :left] = 0
        g[:, :, top:top + h, left + w:] = 0
        g[:, :, top:top + h, left:left + w] = src[r]
    parallel.for_rows(fill, grid.shape[0], parallel.split_size(grid))


def _chunks(xp, length, rows, itemsize, align=1):
    """Column blocks [lo, hi) of the flat axis whose (rows x block) slice of the columns is
    about 4 MB: it stays in the CPU's caches between the copy and the GEMM (4 MB was fastest
    for ResNet-20 here, against 1, 8 and 16 MB, with one thread and with two). Their number
    is a multiple of the thread count and their sizes differ by one ``align`` at most, so
    that the threads run out of blocks together (with 4 MB blocks and a short last one, the
    threads' waiting time in a ResNet-20 step was 24-28 ms against 15-20). Blocks start and
    end at multiples of ``align`` (``SameLayout``: image rows), of which ``length`` is one.
    A GPU takes the whole axis at once."""
    if xp.__name__ != "numpy":
        return [(0, length)]
    units = length // align
    block = max(1, max(1024, min(32768, 2**22 // (rows * itemsize))) // align)
    threads = parallel.get_num_threads()
    count = -(-units // block)
    count = min(-(-count // threads) * threads, units) if count > 1 else 1
    edges = [i * units // count * align for i in range(count)] + [length]
    return list(zip(edges[:-1], edges[1:]))


def _check_input(x, name, channels=None):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input of shape (N, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} input channels (N, {channels}, H, W), "
                         f"got input of shape {tuple(x.shape)}")


class Conv2d(Function):
    """2-D cross-correlation, as in every deep-learning library:

        y[n, o, i, j] = b[o] + sum_{c in group(o), ki, kj} W[o, c, ki, kj] * xpad[n, c, i*s + ki*d, j*s + kj*d]

    Shapes: x (N, C, H, W), W (O, C/groups, KH, KW), b (O,) -> y (N, O, Ho, Wo),
    Ho = floor((H + 2p - d (KH - 1) - 1) / s) + 1 (likewise Wo).
    As matrices, per group: Y = W2 @ cols, so
        dL/dW2 = G @ cols^T,   dL/dcols = W2^T @ G  -> col2im -> dL/dx,   dL/db = sum of G.
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        xp = self.xp
        O, Cg, KH, KW = weight.shape
        _check_input(x, "conv2d", Cg * groups)
        if O % groups:
            raise ValueError(f"conv2d: {O} output channels are not divisible by groups={groups}")
        N, C, H, W = x.shape
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        self.dilation, self.groups, self.kernel = _pair(dilation, "dilation"), groups, (KH, KW)
        Ho = conv_out_size(H, KH, self.stride[0], self.padding[0], self.dilation[0])
        Wo = conv_out_size(W, KW, self.stride[1], self.padding[1], self.dilation[1])
        if Ho < 1 or Wo < 1:
            raise ValueError(f"conv2d: input {H}x{W} is too small for kernel {KH}x{KW} with "
                             f"padding {self.padding} and dilation {self.dilation}")
        self.x_shape, self.out_hw, self.weight = x.shape, (Ho, Wo), weight
        w2 = weight.reshape(groups, O // groups, -1)
        # The flat path unless windows do not overlap (kernel * dilation <= stride on both axes,
        # e.g. a ViT's patch embedding): then im2col copies each input once at most and the
        # strided path needs no planes.
        self.flat = self.stride == (1, 1) or any(
            k * d > st for k, d, st in zip(self.kernel, self.dilation, self.stride))
        if self.flat:  # stride-1 "same" layers on x itself, the others on padded planes
            if self.stride == (1, 1) and (Ho, Wo) == (H, W):
                lay = SameLayout(x.shape, self.kernel, self.padding, self.dilation)
            else:
                lay = FlatLayout(x.shape, self.kernel, self.stride, self.padding, self.dilation, (Ho, Wo))
            self.layout, self.xt = lay, lay.load(xp, x)
            y = xp.empty((groups, O // groups, lay.length), dtype=x.dtype)
            chunks = _chunks(xp, lay.length, C * KH * KW, x.dtype.itemsize, lay.align)

            def fill(block):  # one block's columns, multiplied into its own slice of y
                lo, hi = block
                buf = workspace(xp, "cols", (C * KH * KW * (hi - lo),), x.dtype)
                cols = lay.columns(self.xt, lay.taps, lo, hi, buf)
                xp.matmul(w2, cols.reshape(groups, Cg * KH * KW, -1), out=y[:, :, lo:hi])
            parallel.map_blocks(fill, chunks)
            y = lay.crop(y.reshape(O, -1))
        else:  # strided: the images split over threads, each its own im2col and GEMM
            self.xt = pad_channels_first(xp, x, *self.padding)
            y = xp.empty((groups, O // groups, N * Ho * Wo), dtype=x.dtype)

            def fill(images):
                n0, n1, _ = images.indices(N)
                cols = im2col(xp, self.xt[:, images], self.kernel, self.stride, self.dilation, self.out_hw)
                xp.matmul(w2, cols.reshape(groups, Cg * KH * KW, -1), out=y[:, :, n0 * Ho * Wo:n1 * Ho * Wo])
            parallel.for_rows(fill, N, parallel.split_size(self.xt))
            y = y.reshape(O, N, Ho, Wo)
        if bias is not None:
            y += bias.reshape(O, 1, 1, 1)
        return y.transpose(1, 0, 2, 3)

    def backward(self, g):
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        gb = None
        if self.flat:
            gx, gw = self._backward_flat(g, need_x, need_w)
        else:
            G, O = self.groups, self.weight.shape[0]
            g2 = parallel.contiguous(g.transpose(1, 0, 2, 3)).reshape(G, O // G, -1)
            gx, gw = self._backward_strided(g2, self.weight.reshape(G, O // G, -1), need_x, need_w)
        if gw is not None:
            gw = gw.reshape(self.weight.shape)
        if gx is not None:
            gx = parallel.contiguous(gx).transpose(1, 0, 2, 3)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb

    def _backward_strided(self, g2, w2, need_x, need_w):
        """Backward of the general path, the images split over threads: each recomputes its
        images' columns for its share of dW, and scatters its W^T G into its own images of
        dL/dxt (windows never cross images, so the parts write disjoint memory)."""
        xp, G = self.xp, self.groups
        O, Cg, KH, KW = self.weight.shape
        N, C, H, W = self.x_shape
        (Ho, Wo), (ph, pw) = self.out_hw, self.padding
        rows = Cg * KH * KW
        gxt = xp.zeros(self.xt.shape, dtype=g2.dtype) if need_x else None

        def run(images):
            n0, n1, _ = images.indices(N)
            g_part = g2[:, :, n0 * Ho * Wo:n1 * Ho * Wo]
            gw = None
            if need_w:
                cols = im2col(xp, self.xt[:, images], self.kernel, self.stride, self.dilation, self.out_hw)
                gw = _grad_weight(cols.reshape(G, rows, -1), g_part)
            if need_x:
                gcols = workspace(xp, "grad_cols", (G, rows, g_part.shape[2]), g2.dtype)
                xp.matmul(w2.swapaxes(1, 2), g_part, out=gcols)
                col2im(xp, gcols.reshape((C, KH, KW, n1 - n0) + self.out_hw), self.xt.shape[2:],
                       self.stride, self.dilation, out=gxt[:, images])
            return gw
        parts = parallel.for_rows(run, N, parallel.split_size(self.xt))
        gw = sum(parts) if need_w else None
        gx = gxt[:, :, ph:ph + H, pw:pw + W] if need_x else None
        return gx, gw

    def _backward_flat(self, g, need_x, need_w):
        """Blocked backward of the flat path, both gradients gathered block by block.

        G, the output gradient on the output grid (zero off the valid outputs), is stored
        after ``tail`` zeros (Gshift[o, tail + t] = G[o, t]). With the taps (plane p_k, shift
        off_k) of ``FlatLayout``, y[o, t] = sum_{c,k} W[o, c, k] planes[p_k][c, t + off_k].
        Substituting u = t + off_k, both gradients are sums over positions u of a plane:
            dL/dplanes[p][c, u] = sum_{o, k with p_k = p} W[o, c, k] G[o, u - off_k]
                                = (W'_p @ colsG_p)[c, u],       colsG_p[(o, k), u] = Gshift[o, u + tail - off_k]
            dW[o, c, k]         = sum_u planes[p_k][c, u] G[o, u - off_k]
                                = (planes[p] @ colsG_p^T)[c, (o, k)]   for the taps k of plane p.
        The gradient of each plane is itself a flat convolution of G (flipped shifts, weights
        with the channel axes swapped, W'_p[c, (o, k)] = W[o, c, k], over that plane's taps),
        so each block of it is one im2col copy and one GEMM per plane into its own columns, with
        no scatter and no overlap between blocks; ``FlatLayout.unload`` then reads dL/dx off
        the planes. dW reuses the same columns colsG_p with the plane itself as the other
        operand (a view, no copy), so the input's columns are never rebuilt: one im2col per
        block instead of two. (u runs over the grid's length only; past it the planes hold
        zeros.) Where no input gradient is wanted (a network's first layer), the input's
        columns are the cheaper ones for dW: C*K*K rows against O*K*K.
        Blocks go to whichever thread is free (``parallel.map_blocks``); each returns its own
        share of dW, added up in block order at the end."""
        xp, G, lay = self.xp, self.groups, self.layout
        O, Cg, KH, KW = self.weight.shape
        C = self.x_shape[1]
        L, KK = lay.length, KH * KW
        gsrc, g2 = lay.gradient_source(xp, g)
        g2 = g2.reshape(G, O // G, L)
        # per plane: its taps, their flipped shifts and W'[g, c, (o, k)] = W[g*O/G + o, c, k]
        w4 = self.weight.reshape(G, O // G, Cg, KK).transpose(0, 2, 1, 3)
        grads = [(ks, taps, w4[:, :, :, ks].reshape(G, Cg, -1))
                 for ks, taps in zip(lay.plane_taps, lay.back_taps)]
        gx = xp.empty((len(lay.plane_taps), C, L), dtype=g.dtype) if need_x else None
        rows = max(C, O) * KK
        chunks = _chunks(xp, L, rows, g.dtype.itemsize, lay.align)

        def run(block):  # one block: its slice of every plane's gradient, its share of dW
            lo, hi = block
            buf = workspace(xp, "cols", (rows * (hi - lo),), g.dtype)
            gw = None
            if need_x:
                for p, (ks, taps, wt) in enumerate(grads):
                    cols = lay.columns(gsrc, taps, lo, hi, buf).reshape(G, -1, hi - lo)
                    xp.matmul(wt, cols, out=gx[p].reshape(G, Cg, L)[:, :, lo:hi])
                    if need_w:  # (Cg, n) @ (n, O/G * taps) per group -> dW[:, :, :, ks]
                        gwp = _grad_weight(cols, self.xt[p][:, lo:hi].reshape(G, Cg, -1))
                        gwp = gwp.reshape(G, Cg, O // G, len(ks)).transpose(0, 2, 1, 3)
                        if len(ks) == KK:  # one plane holds every tap (stride 1)
                            gw = gwp
                        else:
                            gw = xp.zeros((G, O // G, Cg, KK), dtype=g.dtype) if gw is None else gw
                            gw[:, :, :, ks] += gwp
            elif need_w:
                cols = lay.columns(self.xt, lay.taps, lo, hi, buf)
                gw = _grad_weight(cols.reshape(G, Cg * KK, -1), g2[:, :, lo:hi])
            return gw
        parts = parallel.map_blocks(run, chunks)
        gw = sum(parts).reshape(G, O // G, Cg * KK) if need_w else None  # in block order
        gx = lay.unload(xp, gx) if need_x else None
        return gx, gw


def _grad_weight(cols, g2):
    """G cols^T per group, the long-reduction product of a weight gradient (G (O, n): the
    output gradient or, in the flat backward, a plane of the input; cols (rows, n)), computed
    as (cols G^T)^T: OpenBLAS runs it up to twice as fast with the larger operand on the left
    (7 vs 15 ms for a whole 16-channel layer; 0.8 vs 1.3 ms for one block of it)."""
    return (cols @ g2.swapaxes(1, 2)).swapaxes(1, 2)


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
