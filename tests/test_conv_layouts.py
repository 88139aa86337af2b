"""The convolution's flat layouts: SameLayout (stride-1 "same" layers read in place) and the
column blocks they are cut into. Values and gradients of conv2d itself are checked in
test_ops.py (against a direct loop and by central differences), and the fast kernel's paths
against the reference path in test_conv_paths.py."""
import numpy as np
import pytest

import tinyvision as tv
import tinyvision.ops as F
from tinyvision import parallel
from tinyvision.kernels.conv import SameLayout, _chunks


def channel_major(a):
    """An (N, C, H, W) view of (C, N, H, W) memory: how a convolution leaves its output."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def reference_columns(x, kernel, padding, dilation):
    """cols[c, (ki, kj), (n, i, j)] = xpad[n, c, i + ki d, j + kj d], from a zero-padded copy."""
    N, C, H, W = x.shape
    (ph, pw), (dh, dw) = padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = [xp[:, :, ki * dh:ki * dh + H, kj * dw:kj * dw + W].transpose(1, 0, 2, 3).reshape(C, -1)
            for ki in range(kernel[0]) for kj in range(kernel[1])]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("shape,kernel,padding,dilation", [
    ((3, 2, 5, 4), (3, 3), (1, 1), (1, 1)),   # ResNet's 3x3
    ((2, 3, 4, 6), (3, 5), (1, 2), (1, 1)),   # uneven kernel
    ((2, 2, 6, 7), (3, 3), (2, 2), (2, 2)),   # dilation: two masked rows per side
    ((2, 2, 3, 4), (7, 7), (3, 3), (1, 1)),   # taps that reach past the whole image
])
@pytest.mark.parametrize("rows_per_block", [1, 3, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_layout_columns_equal_zero_padded_im2col(shape, kernel, padding, dilation, rows_per_block, dtype, rng):
    # Every block, including those that start inside an image and the two at the batch's ends,
    # written into NaN-filled memory: each entry must be the pixel or an exact +0.0 (float32
    # too: the one-copy path's strided view counts its steps in bytes).
    x = rng.standard_normal(shape).astype(dtype)
    lay = SameLayout(shape, kernel, padding, dilation)
    planes = lay.load(channel_major(x))
    expected = reference_columns(x, kernel, padding, dilation)
    W, L = shape[3], lay.length
    for lo in range(0, L, rows_per_block * W):
        hi = min(lo + rows_per_block * W, L)
        buf = np.full(expected.size, np.nan, dtype=dtype)
        cols = lay.columns(planes, lay.taps, lo, hi, buf)
        np.testing.assert_array_equal(cols, expected[:, :, lo:hi])
        assert not np.signbit(cols[cols == 0]).any()


def test_same_layout_reads_a_channel_major_input_in_place(rng):
    # A convolution's output (channel-major) feeds the next one without a copy; a plain NCHW
    # array (the network's input) is copied once.
    x = channel_major(rng.standard_normal((2, 3, 5, 5)))
    lay = SameLayout(x.shape, (3, 3), (1, 1), (1, 1))
    assert np.shares_memory(lay.load(x), x)
    plain = np.ascontiguousarray(x)
    planes = lay.load(plain)
    assert not np.shares_memory(planes, plain)
    np.testing.assert_array_equal(planes[0], plain.transpose(1, 0, 2, 3).reshape(3, -1))
    # a 1x1 kernel's columns are the input's rows themselves
    one = SameLayout(x.shape, (1, 1), (0, 0), (1, 1))
    assert np.shares_memory(one.columns(one.load(x), one.taps, 5, 15, np.empty(0)), x)


def test_conv2d_same_layer_output_needs_no_crop(rng):
    # The output of a stride-1 "same" layer is the GEMM's own array, channel-major, and the
    # input gradient comes out the same way (no crop, no copy).
    x = tv.tensor(channel_major(rng.standard_normal((2, 3, 6, 5))), requires_grad=True)
    w = tv.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert isinstance(y._ctx.saved.layout, SameLayout)
    assert y.data.transpose(1, 0, 2, 3).flags.c_contiguous
    y.backward(tv.tensor(channel_major(rng.standard_normal(y.shape))))
    assert x.grad.data.transpose(1, 0, 2, 3).flags.c_contiguous
    # any other stride-1 layer (here padding 0: a smaller output) keeps the padded planes
    assert not isinstance(F.conv2d(x, w)._ctx.saved.layout, SameLayout)


def test_conv2d_same_layer_keeps_images_apart(rng):
    # Shifted indices run into the neighbouring image; the zeros written there (not a 0/1
    # mask multiplied in) keep a NaN or inf in one image out of the others' borders.
    x = rng.standard_normal((3, 2, 4, 4))
    x[1, :, 0, 0] = np.nan
    x[1, :, 3, 3] = np.inf
    with np.errstate(invalid="ignore"):  # the NaN image's own products
        y = F.conv2d(tv.tensor(x), tv.tensor(rng.standard_normal((2, 2, 3, 3))), padding=1).numpy()
    assert np.isfinite(y[[0, 2]]).all()
    assert not np.isfinite(y[1]).all()


@pytest.mark.parametrize("threads_n", [1, 2, 3])
@pytest.mark.parametrize("length,align", [(4096 * 32, 32), (128 * 64, 8), (7 * 5, 5), (10**6, 1000)])
def test_chunks_cover_the_axis_in_aligned_blocks(length, align, threads_n):
    before = parallel.get_num_threads()
    parallel.set_num_threads(threads_n)
    try:
        blocks = _chunks(length, 144, 4, align)
    finally:
        parallel.set_num_threads(before)
    assert blocks[0][0] == 0 and blocks[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert all(lo % align == 0 and lo < hi for lo, hi in blocks)
    if len(blocks) > 1:
        assert len(blocks) % threads_n == 0 or len(blocks) == length // align  # one unit each
        sizes = {hi - lo for lo, hi in blocks}
        assert max(sizes) - min(sizes) <= align
