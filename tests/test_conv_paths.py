"""The fast convolution kernel (tinyvision/kernels/conv.py) against the reference path
(ops/conv.py, ``tv.use_reference_kernels()``): every layout, at sizes split into several
column blocks on two threads, forward and all gradients to float32 tolerance; float64
gradient checks under both paths; a ResNet-20 step under both."""
import numpy as np
import pytest
from numpy.lib.array_utils import byte_bounds

import tinyvision as tv
import tinyvision.models  # noqa: F401  (registers tv.models)
import tinyvision.ops as F
from tinyvision import parallel
from tinyvision.kernels import conv as fast
from tinyvision.ops.conv import conv_out_size


def channel_major(a):
    """An (N, C, H, W) view of (C, N, H, W) memory: how the layers hand activations on."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads, small column blocks, and a record of how each op split its work:
    ('blocks', n) per map_blocks call, ('parts', n) per map_parts call."""
    before = tv.get_num_threads()
    tv.set_num_threads(2)
    monkeypatch.setattr(fast, "BLOCK_BYTES", 2**16)  # blocks of the minimum 1024 columns
    seen = []
    map_blocks, map_parts = parallel.map_blocks, parallel.map_parts
    monkeypatch.setattr(parallel, "map_blocks",
                        lambda fn, blocks: seen.append(("blocks", len(blocks))) or map_blocks(fn, blocks))
    monkeypatch.setattr(parallel, "map_parts", lambda fn, items, threads=None: seen.append(
        ("parts", len(parallel.split(items, threads or tv.get_num_threads())))) or map_parts(fn, items, threads))
    yield seen
    tv.set_num_threads(before)


# (x shape, w shape, stride, padding, dilation, groups, the path the fast kernel takes)
PATHS = {
    "same 3x3": ((16, 16, 16, 16), (16, 16, 3, 3), 1, 1, 1, 1, fast.SameLayout),
    "same 1x1": ((16, 16, 16, 16), (24, 16, 1, 1), 1, 0, 1, 1, fast.SameLayout),
    "same, dilation 2": ((16, 8, 16, 16), (8, 8, 3, 3), 1, 2, 2, 1, fast.SameLayout),
    "same, groups 2": ((16, 8, 16, 16), (8, 4, 3, 3), 1, 1, 1, 2, fast.SameLayout),
    "flat stride 1 (shrinks)": ((16, 8, 16, 16), (12, 8, 3, 3), 1, 0, 1, 1, fast.FlatLayout),
    "polyphase stride 2 (ResNet-20's 16 -> 32)": ((128, 16, 32, 32), (32, 16, 3, 3), 2, 1, 1, 1, fast.FlatLayout),
    "polyphase stride 2, depthwise": ((64, 8, 16, 16), (8, 1, 3, 3), 2, 1, 1, 8, fast.FlatLayout),
    "polyphase stride 2, dilation 2": ((48, 8, 17, 17), (8, 8, 3, 3), 2, 2, 2, 1, fast.FlatLayout),
    "polyphase stride 3, 5x5": ((64, 4, 20, 20), (6, 4, 5, 5), 3, 2, 1, 1, fast.FlatLayout),
    "strided patch embedding": ((64, 3, 32, 32), (48, 3, 4, 4), 4, 0, 1, 1, None),
    "strided 1x1 stride 2": ((64, 8, 16, 16), (16, 8, 1, 1), 2, 0, 1, 1, None),
}


def run_conv(x, w, b, g, case, x_grad):
    """What the forward saved for its backward, and [y, dL/dx (None when x needs no gradient),
    dL/dW, dL/db] of conv2d for the upstream gradient g."""
    _, _, s, p, d, groups, _ = case
    X = tv.tensor(x, requires_grad=x_grad)
    W, B = tv.tensor(w, requires_grad=True), tv.tensor(b, requires_grad=True)
    y = F.conv2d(X, W, B, stride=s, padding=p, dilation=d, groups=groups)
    saved = y._ctx.saved
    y.backward(tv.tensor(g))
    return saved, [y.numpy(), X.grad.numpy() if x_grad else None, W.grad.numpy(), B.grad.numpy()]


@pytest.mark.parametrize("x_grad", [True, False], ids=["dx and dW", "dW only (a stem)"])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_fast_kernel_matches_the_reference_path(name, x_grad, two_threads, rng):
    case = PATHS[name]
    xs, ws, s, p, d, groups, layout = case
    x = channel_major(rng.standard_normal(xs).astype(np.float32))
    w = rng.standard_normal(ws).astype(np.float32) / np.sqrt(np.prod(ws[1:]))
    b = rng.standard_normal(ws[0]).astype(np.float32)
    out = [conv_out_size(n, k, s, p, d) for n, k in zip(xs[2:], ws[2:])]
    g = channel_major(rng.standard_normal((xs[0], ws[0], *out)).astype(np.float32))
    with tv.use_reference_kernels():
        _, expected = run_conv(x, w, b, g, case, x_grad)
    two_threads.clear()
    saved, got = run_conv(x, w, b, g, case, x_grad)
    # the path and the split this case is here for
    assert isinstance(saved.layout, layout) if layout else saved.layout is None
    if layout:
        assert max(n for kind, n in two_threads if kind == "blocks") >= 4
    else:
        assert ("parts", 2) in two_threads
    for a, e, what in zip(got, expected, ["y", "dL/dx", "dL/dW", "dL/db"]):
        if e is not None:
            np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * np.abs(e).max(), err_msg=what)


GRADCHECK_CASES = {  # small float64 inputs, one per path: (x shape, w shape, stride, padding, dilation, groups)
    "same 3x3": ((2, 3, 5, 4), (4, 3, 3, 3), 1, 1, 1, 1),
    "same 1x1": ((2, 3, 4, 3), (2, 3, 1, 1), 1, 0, 1, 1),
    "flat stride 1": ((2, 2, 5, 6), (3, 2, 3, 3), 1, 0, 1, 1),
    "polyphase stride 2, groups 2": ((2, 4, 7, 6), (4, 2, 3, 3), 2, 1, 1, 2),
    "polyphase stride 2, dilation 2": ((2, 2, 7, 7), (2, 2, 3, 3), 2, 2, 2, 1),
    "strided 2x2 stride 2": ((2, 3, 4, 6), (2, 3, 2, 2), 2, 0, 1, 1),
}


@pytest.mark.parametrize("x_grad", [True, False], ids=["dx and dW", "dW only"])
@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_conv2d_gradcheck_under_both_paths(name, reference, x_grad, rng):
    xs, ws, s, p, d, groups = GRADCHECK_CASES[name]
    x = tv.tensor(rng.standard_normal(xs), dtype=tv.float64, requires_grad=x_grad)
    w = tv.tensor(rng.standard_normal(ws), dtype=tv.float64, requires_grad=True)
    b = tv.tensor(rng.standard_normal(ws[0]), dtype=tv.float64, requires_grad=True)
    with tv.use_reference_kernels(reference):
        tv.gradcheck(lambda a, ww, bb: F.conv2d(a, ww, bb, stride=s, padding=p, dilation=d, groups=groups), x, w, b)


def test_reference_switch_keeps_the_fast_kernel_out(monkeypatch, rng):
    # Under the switch the op never enters kernels.conv, forward or backward.
    def refuse(*args):
        raise AssertionError("the fast kernel ran under use_reference_kernels()")
    monkeypatch.setattr(fast, "conv2d_forward", refuse)
    monkeypatch.setattr(fast, "conv2d_backward", refuse)
    x = tv.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = tv.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    with tv.use_reference_kernels():
        F.conv2d(x, w, padding=1).sum().backward()
    with pytest.raises(AssertionError, match="fast kernel ran"):
        F.conv2d(x, w, padding=1)


def test_resnet20_step_is_the_same_under_both_paths(rng):
    # A whole network (the stem's dW-only branch, "same" layers, the stride-2 layers, batch
    # norm, shortcuts): equal loss and parameter gradients to float32 tolerance.
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    results = []
    for reference in (False, True):
        tv.manual_seed(0)
        model = tv.models.create("resnet20")
        model.train()
        with tv.use_reference_kernels(reference):
            loss = tv.nn.functional.cross_entropy(model(tv.tensor(x)), tv.tensor(y))
            loss.backward()
        results.append((loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}))
    (fast_loss, fast_grads), (ref_loss, ref_grads) = results
    assert fast_loss == pytest.approx(ref_loss, rel=1e-5)
    for n, g in ref_grads.items():
        np.testing.assert_allclose(fast_grads[n], g, rtol=1e-3, atol=1e-4 * np.abs(g).max(), err_msg=n)


def test_strided_views_stay_inside_their_source(monkeypatch, two_threads, rng):
    # Every as_strided view a kernel copies from lies within the array it was made from: the
    # backward's "same" taps step downwards, and its first and last blocks once read up to a
    # row past either end of the output gradient (a crash where that memory is unmapped).
    real = np.lib.stride_tricks.as_strided
    outside = []

    def checked(a, shape, strides):
        view, root = real(a, shape, strides), a
        while isinstance(root.base, np.ndarray):
            root = root.base
        (lo, hi), (root_lo, root_hi) = byte_bounds(view), byte_bounds(root)
        if lo < root_lo or hi > root_hi:
            outside.append((shape, lo - root_lo, hi - root_hi))
        return view
    monkeypatch.setattr(np.lib.stride_tricks, "as_strided", checked)
    for name in ("same 3x3", "same, dilation 2", "strided patch embedding"):
        xs, ws, s, p, d, groups, _ = PATHS[name]
        x = tv.tensor(channel_major(rng.standard_normal(xs).astype(np.float32)), requires_grad=True)
        w = tv.tensor(rng.standard_normal(ws).astype(np.float32), requires_grad=True)
        y = F.conv2d(x, w, stride=s, padding=p, dilation=d, groups=groups)
        y.backward(tv.tensor(channel_major(rng.standard_normal(y.shape).astype(np.float32))))
    assert outside == []


@pytest.mark.parametrize("name", ["same 3x3", "flat stride 1 (shrinks)"])
def test_frozen_weight_gets_no_gradient_and_skips_its_products(name, two_threads, rng):
    # A frozen weight (cifar_speedrun's whitening conv): no dL/dW, the same dL/dx and dL/db as
    # the reference path; with the input needing no gradient either, the backward computes
    # nothing but the bias's sum (no column blocks).
    xs, ws, s, p, d, groups, _ = PATHS[name]
    x = channel_major(rng.standard_normal(xs).astype(np.float32))
    w, b = rng.standard_normal(ws).astype(np.float32) / 10, rng.standard_normal(ws[0]).astype(np.float32)
    g = None
    for x_grad in (True, False):
        results = []
        for reference in (True, False):
            X, B = tv.tensor(x, requires_grad=x_grad), tv.tensor(b, requires_grad=True)
            W = tv.tensor(w)  # requires_grad False
            with tv.use_reference_kernels(reference):
                y = F.conv2d(X, W, B, stride=s, padding=p, dilation=d, groups=groups)
                if g is None:
                    g = channel_major(rng.standard_normal(y.shape).astype(np.float32))
                two_threads.clear()
                y.backward(tv.tensor(g))
            assert W.grad is None
            results.append((X.grad.numpy() if x_grad else None, B.grad.numpy()))
        if not x_grad:
            assert two_threads == []  # the fast backward ran no blocks
        for got, expected in zip(results[1], results[0]):
            if expected is not None:
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
