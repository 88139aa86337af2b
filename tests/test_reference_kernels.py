"""The reference switch, and every fast CPU kernel against its op's reference formula.

Each op with a fast kernel (tinyvision/kernels/) is run twice on the same inputs: once on the
fast kernel with two threads and inputs large enough that the kernel really splits its work
(checked), once on the readable reference path (``tv.use_reference_kernels()``). Forward and
gradients must agree to float32 tolerance; float64 gradient checks pass on both paths.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyvision as tv
import tinyvision.ops as F
from tinyvision import kernels, parallel
from test_parallel import parts_seen  # noqa: F401  (a fixture: map_parts calls and their parts)


@pytest.fixture(autouse=True)
def fast_by_default():
    """Every test starts on the fast kernels (also under TINYVISION_REFERENCE=1), with two
    threads; both settings are restored afterwards."""
    threads = parallel.get_num_threads()
    with tv.use_reference_kernels(False):
        parallel.set_num_threads(2)
        yield
    parallel.set_num_threads(threads)


# ------------------------------------------------------------------ the switch
def test_switch_as_a_function_and_as_a_context_manager():
    assert not kernels.reference_enabled()
    tv.use_reference_kernels()
    assert kernels.reference_enabled()
    tv.use_reference_kernels(False)
    assert not kernels.reference_enabled()
    with tv.use_reference_kernels():
        assert kernels.reference_enabled()
        with tv.use_reference_kernels(False):
            assert not kernels.reference_enabled()
        assert kernels.reference_enabled()          # the inner block restored the outer one
    assert not kernels.reference_enabled()
    with pytest.raises(KeyError):
        with tv.use_reference_kernels():
            raise KeyError("inside")
    assert not kernels.reference_enabled()          # restored on an exception too


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), (None, False)])
def test_switch_from_the_environment(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "TINYVISION_REFERENCE"}
    if value is not None:
        env["TINYVISION_REFERENCE"] = value
    code = "import tinyvision.kernels as k; print(k.reference_enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected)


# ------------------------------------------------------------------ each op, both paths
def _attention(q, k, v, bias):
    mask = np.ones((65, 65), dtype=bool)
    mask[:, -5:] = False                            # every query keeps 60 keys
    return tv.nn.scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)


def _attention_dropout(q, k, v):
    return tv.nn.scaled_dot_product_attention(q, k, v, dropout_p=0.2, training=True)


def _packed_attention(qkv):
    from tinyvision.ops.attention import PackedSelfAttention
    return PackedSelfAttention.apply(qkv, scale=0.25)


def _batch_norm_eval(x, w, b):
    mean, var = tv.tensor(np.linspace(-1, 1, 8)), tv.tensor(np.linspace(0.5, 2, 8))
    return F.batch_norm(x, mean, var, w, b, training=False)


# name: (function, input shapes). Every size is past parallel.MIN_SPLIT (elements, or for a
# matrix product MIN_SPLIT * 64 multiply-adds), so the fast kernel splits its work.
OPS = {
    "batch_norm": (lambda x, w, b: F.batch_norm(x, weight=w, bias=b), [(32, 8, 32, 32), (8,), (8,)]),
    "batch_norm_no_affine": (F.batch_norm, [(32, 8, 32, 32)]),
    "batch_norm_eval": (_batch_norm_eval, [(32, 8, 32, 32), (8,), (8,)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 48, w, b), [(64, 65, 48), (48,), (48,)]),
    "layer_norm_2d": (lambda x, w, b: F.layer_norm(x, (13, 48), w, b), [(320, 13, 48), (13, 48), (13, 48)]),
    "attention": (_attention, [(16, 4, 65, 32)] * 3 + [(65, 65)]),
    "attention_dropout": (_attention_dropout, [(16, 4, 65, 32)] * 3),
    "attention_packed": (_packed_attention, [(3, 16, 4, 65, 32)]),
    "linear": (F.linear, [(64, 65, 48), (96, 48), (96,)]),
    "matmul_2d": (F.matmul, [(300, 200), (200, 150)]),
    "matmul_batched": (F.matmul, [(8, 130, 64), (8, 64, 130)]),
    "matmul_stack_times_matrix": (F.matmul, [(8, 130, 64), (64, 130)]),
    "relu": (F.relu, [(64, 65, 48)]),
    "gelu": (F.gelu, [(64, 65, 48)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [(64, 65, 48)]),
    "add": (lambda a, b: a + b, [(64, 65, 48), (64, 65, 48)]),
    "reshape_transposed": (lambda a: F.reshape(F.transpose(a, 1, 2), (-1, 48)), [(64, 48, 65)]),
    "max_pool2d": (lambda a: F.max_pool2d(a, 2), [(32, 8, 33, 33)]),
}


def _run(fn, arrays, grad_seed=1):
    """fn's output and the gradient of each input for a random upstream gradient (float32)."""
    tensors = [tv.tensor(a, requires_grad=True) for a in arrays]
    tv.manual_seed(0)                               # the same dropout mask on both paths
    y = fn(*tensors)
    g = np.random.default_rng(grad_seed).standard_normal(y.shape).astype(np.float32)
    y.backward(tv.tensor(g))
    return [y.numpy()] + [t.grad.numpy() for t in tensors]


def _assert_close(fast, reference, what):
    for i, (a, b) in enumerate(zip(fast, reference)):
        scale = float(np.abs(b).max()) or 1.0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * scale,
                                   err_msg=f"{what}: {'output' if i == 0 else f'gradient of input {i - 1}'}")


@pytest.mark.parametrize("name", sorted(OPS))
def test_fast_kernel_equals_reference(name, parts_seen, rng):
    fn, shapes = OPS[name]
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    fast = _run(fn, arrays)
    assert 2 in parts_seen, f"{name}: the fast kernel did not split its work over two threads"
    parts_seen.clear()
    with tv.use_reference_kernels():
        reference = _run(fn, arrays)
    assert parts_seen == [], f"{name}: the reference path ran a fast kernel"
    _assert_close(fast, reference, name)


# Small shapes for central differences; MIN_SPLIT = 1 makes the fast kernels split them anyway.
GRADCHECK_OPS = {
    "batch_norm": (lambda x, w, b: F.batch_norm(x, weight=w, bias=b), [(3, 4, 3, 3), (4,), (4,)]),
    "batch_norm_eval": (_batch_norm_eval, [(3, 8, 2, 2), (8,), (8,)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 6, w, b), [(2, 5, 6), (6,), (6,)]),
    "attention": (lambda q, k, v, bias: tv.nn.scaled_dot_product_attention(q, k, v, bias=bias),
                  [(2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 3), (5, 6)]),
    "linear": (F.linear, [(2, 5, 6), (3, 6), (3,)]),
    "matmul_batched": (F.matmul, [(4, 3, 5), (4, 5, 2)]),
    "gelu": (F.gelu, [(4, 3, 5)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [(4, 3, 5)]),
    "relu": (F.relu, [(4, 3, 5)]),
    "add": (lambda a, b: a + b, [(4, 3, 5), (4, 3, 5)]),
    "max_pool2d": (lambda a: F.max_pool2d(a, 2), [(2, 3, 5, 7)]),
    "max_pool2d_gaps": (lambda a: F.max_pool2d(a, (2, 1), (3, 2)), [(2, 3, 8, 7)]),
}


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
@pytest.mark.parametrize("name", sorted(GRADCHECK_OPS))
def test_gradcheck_on_both_paths(name, reference, monkeypatch, rng):
    fn, shapes = GRADCHECK_OPS[name]
    monkeypatch.setattr(parallel, "MIN_SPLIT", 1)
    inputs = [tv.tensor(rng.standard_normal(shape), dtype=tv.float64) for shape in shapes]
    with tv.use_reference_kernels(reference):
        tv.gradcheck(fn, *inputs)                   # a random upstream gradient (its seed 0)


def test_the_op_keeps_the_path_it_took_in_forward(rng):
    # Switching between forward and backward must not hand one path's cache to the other.
    x = tv.tensor(rng.standard_normal((4, 3, 5, 5)), requires_grad=True)
    y = F.batch_norm(x)
    with tv.use_reference_kernels():
        y.backward(tv.tensor(rng.standard_normal(y.shape)))
    assert np.isfinite(x.grad.numpy()).all()


def test_vit_forward_and_backward_equal_on_both_paths(rng):
    from tinyvision.models.vit import VisionTransformer
    x = rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
    labels = tv.tensor(rng.integers(0, 10, size=8))

    def step():
        tv.manual_seed(0)
        model = VisionTransformer(img_size=16, patch_size=4, num_classes=10, embed_dim=48, depth=2,
                                  num_heads=3, mlp_ratio=2.0)
        loss = F.cross_entropy(model(tv.tensor(x)), labels)
        loss.backward()
        return [loss.numpy()] + [p.grad.numpy() for p in model.parameters()]
    fast = step()
    with tv.use_reference_kernels():
        reference = step()
    assert len(fast) == len(reference) > 10
    _assert_close(fast, reference, "ViT")


# ------------------------------------------------------------------ max pooling, exactly
def _pool_both_paths(x, g, k, s):
    """(y, dL/dx) of max_pool2d(x, k, s) for upstream g, on the fast path and the reference."""
    out = []
    for reference in (False, True):
        with tv.use_reference_kernels(reference):
            t = tv.tensor(x, dtype=x.dtype, requires_grad=True)
            y = F.max_pool2d(t, k, s)
            y.backward(tv.tensor(g, dtype=g.dtype))
            out.append((y.numpy(), t.grad.numpy()))
    return out


@pytest.mark.parametrize("layout", ["nchw", "channel_major", "sliced"])
@pytest.mark.parametrize("k, s", [(2, 2), (3, 3), ((2, 3), (2, 3)), ((1, 2), (2, 3))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_fast_equals_reference_exactly_with_ties(k, s, layout, dtype, monkeypatch, parts_seen, rng):
    # Values from {-2, ..., 2}: most windows hold ties, which both paths give to the first
    # maximum; odd sizes leave rows and columns outside every window (gradient 0); small
    # blocks make the kernel split the 4 * 5 planes over two threads.
    monkeypatch.setattr("tinyvision.kernels.pool.BLOCK_ELEMENTS", 100)
    x = rng.integers(-2, 3, (4, 5, 11, 9)).astype(dtype)
    if layout == "channel_major":                   # as a convolution hands it over
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "sliced":
        x = np.repeat(x, 2, axis=3)[..., ::2]
    g = rng.standard_normal(F.max_pool2d(tv.tensor(x), k, s).shape).astype(dtype)
    (y, gx), (y_ref, gx_ref) = _pool_both_paths(x, g, k, s)
    assert 2 in parts_seen
    assert y.dtype == gx.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gx, gx_ref)


def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1, 1, 0, 3, 0, 2],                 # three 2 x 2 windows side by side:
                    [1, 1, 3, 0, 5, 5]]]], np.float32)  # all equal, 3 twice, 5 twice
    expected = np.array([[1, 0, 0, 1, 0, 0],
                         [0, 0, 0, 0, 1, 0]], np.float32)
    for y, gx in _pool_both_paths(x, np.ones((1, 1, 1, 3), np.float32), 2, 2):
        np.testing.assert_array_equal(y.ravel(), [1, 3, 5])
        np.testing.assert_array_equal(gx[0, 0], expected)


def test_max_pool_keeps_the_layout_it_was_given(rng):
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for a, c_contiguous in ((x, lambda v: v), (channel_major, lambda v: v.transpose(1, 0, 2, 3))):
        t = tv.tensor(a, requires_grad=True)
        y = F.max_pool2d(t, 2)
        y.backward(tv.tensor(np.ones(y.shape, np.float32)))
        assert c_contiguous(y.numpy()).flags.c_contiguous
        assert c_contiguous(t.grad.numpy()).flags.c_contiguous


@pytest.mark.parametrize("k, s, p", [(3, 2, 0), (2, 2, 1)])
def test_max_pool_overlapping_or_padded_windows_take_the_reference(k, s, p, monkeypatch, rng):
    def fail(*args):
        raise AssertionError("the non-overlapping kernel ran")
    monkeypatch.setattr("tinyvision.kernels.pool.max_pool2d_forward", fail)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    with tv.use_reference_kernels():
        expected = F.max_pool2d(tv.tensor(x), k, s, p).numpy()
    np.testing.assert_array_equal(F.max_pool2d(tv.tensor(x), k, s, p).numpy(), expected)
