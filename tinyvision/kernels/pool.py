"""Fast CPU kernel of ``ops.pool.MaxPool2d`` where the windows do not overlap (stride >= kernel,
no padding: ``MaxPool2d(2)`` and the like). The same formula and the same winner (the first
maximum of a window, in the window's row-major order) as the reference, computed without
index arrays: each kernel offset (ki, kj) is a strided view of the input, and backward writes
g straight into the matching strided view of dL/dx, since no two windows share an input.

Both passes run on blocks of whole (H, W) planes that stay in cache, handed out to threads
(``parallel.map_blocks``), in the memory order of the input: planes follow its larger-strided
leading axis (channel-major as the convolutions hand it over, or plain NCHW), and the output
and dL/dx come back in that same layout. Inputs are NumPy arrays.
"""
import numpy as np

from .. import parallel
from ..ops.conv import _window

# Planes per block: about this many input elements (a block's input, output and temporaries
# stay in a core's L2 cache while its few passes run over them).
BLOCK_ELEMENTS = 2**17


def non_overlapping(kernel, stride, padding):
    """True where this kernel applies: every input element lies in at most one window, no
    padding, and a window's offsets fit the uint8 record of the winner."""
    return (all(k <= s for k, s in zip(kernel, stride)) and padding == (0, 0)
            and kernel[0] * kernel[1] <= 256)


def _planes(a):
    """a (N, C, h, w) as (P, h, w) planes in its memory order, and the permutation of the two
    leading axes used (its own inverse): (1, 0, 2, 3) where C is the slower axis."""
    order = (1, 0, 2, 3) if a.strides[1] > a.strides[0] else (0, 1, 2, 3)
    lead = a.transpose(order)
    return parallel.reshape(lead, (-1,) + a.shape[2:]), order, lead.shape


def _offsets(kernel, stride, out_hw):
    """(t, (rows, cols)) for each kernel offset t = ki * KW + kj: the slices of a plane that it
    reads for all outputs."""
    (KH, KW), (sh, sw), (Ho, Wo) = kernel, stride, out_hw
    return [(ki * KW + kj, (_window(ki, sh, 1, Ho), _window(kj, sw, 1, Wo)))
            for ki in range(KH) for kj in range(KW)]


def _blocks(planes, plane_size):
    step = max(1, BLOCK_ELEMENTS // max(1, plane_size))
    return [slice(i, min(i + step, planes)) for i in range(0, planes, step)]


def max_pool2d_forward(x, kernel, stride, out_hw):
    """x (N, C, H, W) -> y (N, C, Ho, Wo) in x's layout, and the cache for
    ``max_pool2d_backward``: the winning offset of each window (ki * KW + kj, uint8; the first
    maximum, as the reference's running y = where(win > y, win, y)) and the layout. Unlike
    the reference, a NaN anywhere in a window makes its maximum NaN (as ``np.maximum``)."""
    planes, order, lead_shape = _planes(x)
    P = planes.shape[0]
    y = np.empty((P,) + tuple(out_hw), dtype=x.dtype)
    arg = np.empty(y.shape, dtype=np.uint8)
    offsets = _offsets(kernel, stride, out_hw)

    def block(r):
        # Running maximum over the offsets, y_t = max(y_{t-1}, win_t), in two buffers taking
        # turns, so that the winner test y_t != y_{t-1} (that is win_t > y_{t-1}) reads
        # contiguous memory instead of the strided window; the last buffer written is y's.
        # arg = the last t that won = max over t of t * [won].
        xb, ab = planes[r], arg[r]
        bufs = [y[r], np.empty(ab.shape, dtype=x.dtype)]
        won, step = np.empty(ab.shape, dtype=bool), np.empty(ab.shape, dtype=np.uint8)
        last = len(offsets) - 1
        prev = bufs[last % 2]                        # offset t's maximum goes to bufs[(last - t) % 2]
        prev[...] = xb[(slice(None),) + offsets[0][1]]
        ab[...] = 0
        for t, (rows, cols) in offsets[1:]:
            cur = bufs[(last - t) % 2]
            np.maximum(prev, xb[:, rows, cols], out=cur)
            np.not_equal(cur, prev, out=won)
            np.multiply(won, np.uint8(t), out=step)
            np.maximum(ab, step, out=ab)
            prev = cur
    parallel.map_blocks(block, _blocks(P, x.shape[2] * x.shape[3]))
    out_shape = lead_shape[:2] + tuple(out_hw)
    return y.reshape(out_shape).transpose(order), (arg, order)


def max_pool2d_backward(g, cache, x_shape, kernel, stride):
    """dL/dx (N, C, H, W) from g (N, C, Ho, Wo): each window's g at its winning offset, zero
    elsewhere; in the layout of the forward input."""
    arg, order = cache
    gl = g.transpose(order)
    gp = parallel.reshape(gl, (-1,) + g.shape[2:])
    ap = arg.reshape(gp.shape)
    (H, W), (Ho, Wo) = x_shape[2:], g.shape[2:]
    gx = np.empty((gp.shape[0], H, W), dtype=g.dtype)
    offsets = _offsets(kernel, stride, (Ho, Wo))

    def block(r):
        gxb, gb, ab = gx[r], gp[r], ap[r]
        if tuple(kernel) != tuple(stride):    # gaps between the windows
            gxb[...] = 0
        else:                                 # only the rows and columns past the last window
            gxb[:, Ho * stride[0]:] = 0
            gxb[:, :, Wo * stride[1]:] = 0
        hit = np.empty(gb.shape, dtype=bool)
        for t, (rows, cols) in offsets:
            np.equal(ab, t, out=hit)
            np.multiply(gb, hit, out=gxb[:, rows, cols])
    parallel.map_blocks(block, _blocks(gp.shape[0], H * W))
    return gx.reshape(gl.shape[:2] + (H, W)).transpose(order)
