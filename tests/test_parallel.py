"""Intra-op threads (tinyvision.parallel) and the ops that split their work with them."""
import threading
import time

import numpy as np
import pytest

import tinyvision as tv
import tinyvision.ops as F
from tinyvision import parallel


@pytest.fixture
def threads():
    """Set the thread count for one test; restore it afterwards."""
    before = parallel.get_num_threads()
    yield parallel.set_num_threads
    parallel.set_num_threads(before)


@pytest.fixture
def parts_seen(monkeypatch):
    """Record how many parts each map_parts call really ran (proves the threaded path ran)."""
    seen = []
    original = parallel.map_parts

    def spy(fn, items, threads=None):
        results = original(fn, items, threads)
        seen.append(len(results))
        return results
    monkeypatch.setattr(parallel, "map_parts", spy)
    return seen


def test_split_is_contiguous_and_covers_everything():
    assert parallel.split(list(range(7)), 2) == [[0, 1, 2], [3, 4, 5, 6]]
    assert parallel.split(range(10), 3) == [range(0, 3), range(3, 6), range(6, 10)]
    assert parallel.split([1], 4) == [[1]]


def test_map_parts_runs_parts_on_threads_in_order(threads):
    threads(3)
    names = parallel.map_parts(lambda part: (list(part), threading.current_thread().name), list(range(9)))
    assert [p for p, _ in names] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert names[0][1] == threading.current_thread().name          # the caller takes part one
    assert all(n.startswith("tinyvision") for _, n in names[1:])


def test_map_parts_with_one_thread_calls_once_inline(threads):
    threads(1)
    assert parallel.map_parts(lambda part: (part, threading.current_thread().name), [1, 2, 3]) == \
        [([1, 2, 3], threading.current_thread().name)]


def test_nested_map_parts_runs_inline(threads):
    threads(2)
    inner = parallel.map_parts(lambda outer: parallel.map_parts(len, list(range(6))), [0, 1])
    assert inner == [[6], [6]]


def test_map_parts_raises_a_parts_exception(threads):
    threads(2)

    def fail_on_second(part):
        if 3 in part:
            raise KeyError("part two failed")
        return part
    with pytest.raises(KeyError, match="part two failed"):
        parallel.map_parts(fail_on_second, [1, 2, 3, 4])
    with pytest.raises(KeyError, match="part one failed"):  # raised on the calling thread
        parallel.map_parts(lambda part: {}["part one failed"] if 1 in part else part, [1, 2, 3, 4])


def test_map_blocks_hands_blocks_to_whichever_thread_is_free(threads):
    # Block 0 holds its thread until every other block is done: with fixed shares (0, 1, 2 on
    # one thread) that would never happen; handed out one at a time, the other thread runs
    # blocks 1..5 meanwhile. The results still come back in the blocks' order.
    threads(2)
    rest_done, done, lock = threading.Event(), [], threading.Lock()

    def fn(block):
        if block == 0:
            assert rest_done.wait(10), "block 0's thread was given the other blocks too"
        else:
            with lock:
                done.append(block)
                if len(done) == 5:
                    rest_done.set()
        return block * 10, threading.current_thread().name
    results = parallel.map_blocks(fn, range(6))
    assert [r for r, _ in results] == [0, 10, 20, 30, 40, 50]
    assert len({name for _, name in results[1:]}) == 1 != len({name for _, name in results})


def test_map_blocks_inline_with_one_thread_and_when_nested(threads):
    threads(1)
    me = threading.current_thread().name
    assert parallel.map_blocks(lambda b: (b, threading.current_thread().name), [3, 4]) == [(3, me), (4, me)]
    threads(2)
    assert parallel.map_blocks(lambda b: parallel.map_blocks(len, [[1], [1, 2]]), [0, 1]) == [[1, 2], [1, 2]]


def test_map_blocks_raises_and_stops_handing_out_blocks(threads):
    threads(2)
    ran = []

    def fn(block):
        ran.append(block)
        if block == 1:
            raise KeyError("block one failed")
        time.sleep(0.002)
        return block
    with pytest.raises(KeyError, match="block one failed"):
        parallel.map_blocks(fn, range(200))
    assert len(ran) < 50  # not all 200: the other thread stopped after its current block


def test_openblas_runs_one_thread_while_tinyvision_splits(threads):
    if parallel.blas_num_threads() is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS whose thread count can be set")
    threads(1)
    own = parallel.blas_num_threads()
    threads(2)
    assert parallel.blas_num_threads() == 1
    threads(1)
    assert parallel.blas_num_threads() == own


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("TINYVISION_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("TINYVISION_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="TINYVISION_NUM_THREADS must be a positive integer"):
            parallel._default_threads()


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match="positive int"):
        parallel.set_num_threads(0)
    with pytest.raises(ValueError, match="positive int"):
        parallel.set_num_threads(2.0)


def test_contiguous_copies_views_by_rows(threads):
    threads(2)
    a = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    view = a.transpose(1, 0, 2)[:, :, 1:4]
    out = parallel.contiguous(view)
    assert out.flags.c_contiguous and np.array_equal(out, view)
    assert parallel.contiguous(a) is a
    with pytest.raises(ValueError, match="leading axes differ"):
        parallel.assign_rows(np.empty((3, 2)), np.empty((2, 2)))


def _conv_check(x, w, stride, padding, dilation, rng):
    """Forward and both gradients of conv2d, each checked exactly: y is linear in x and in w, so
    with L = <y, v>:  <dL/dx, dx> = <conv(dx, w), v>  and  <dL/dw, dw> = <conv(x, dw), v>."""
    X, Wt = tv.tensor(x, dtype=tv.float64, requires_grad=True), tv.tensor(w, dtype=tv.float64, requires_grad=True)
    y = F.conv2d(X, Wt, stride=stride, padding=padding, dilation=dilation)
    v = rng.standard_normal(y.shape)
    y.backward(tv.tensor(v, dtype=tv.float64))
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    conv = lambda a, b: F.conv2d(tv.tensor(a, dtype=tv.float64), tv.tensor(b, dtype=tv.float64),  # noqa: E731
                                 stride=stride, padding=padding, dilation=dilation).numpy()
    np.testing.assert_allclose((X.grad.numpy() * dx).sum(), (conv(dx, w) * v).sum(), rtol=1e-10)
    np.testing.assert_allclose((Wt.grad.numpy() * dw).sum(), (conv(x, dw) * v).sum(), rtol=1e-10)
    return y.numpy(), X.grad.numpy(), Wt.grad.numpy()


@pytest.mark.parametrize("dilation", [1, 7])
def test_conv2d_split_over_threads_equals_one_thread(dilation, threads, parts_seen, rng):
    # float64, 64 channels: blocks of about 1024 columns, so these inputs span several blocks.
    # Dilation 7 on 64x64 makes each block read 1106 columns past its end (more than a block).
    N, H = (4, 24) if dilation == 1 else (1, 64)
    x = rng.standard_normal((N, 64, H, H))
    w = rng.standard_normal((4, 64, 3, 3))
    threads(1)
    serial = _conv_check(x, w, 1, dilation, dilation, np.random.default_rng(1))
    assert max(parts_seen, default=1) == 1
    threads(2)
    parts_seen.clear()
    split = _conv_check(x, w, 1, dilation, dilation, np.random.default_rng(1))
    assert max(parts_seen) == 2
    for a, b in zip(serial, split):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


SPLIT_OPS = {  # name: (function, input shapes); every op's rows or stack split in two
    "batch_norm": (lambda x, w, b: F.batch_norm(x, weight=w, bias=b), [(3, 4, 5, 5), (4,), (4,)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, tv.ones(4, dtype=tv.float64) * 0.5,
                                                     tv.ones(4, dtype=tv.float64) * 2.0, w, b, training=False),
                        [(3, 4, 5, 5), (4,), (4,)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 6, w, b), [(2, 5, 6), (6,), (6,)]),
    "linear": (F.linear, [(2, 5, 6), (3, 6), (3,)]),
    "matmul_batched": (F.matmul, [(4, 3, 5), (4, 5, 2)]),
    "matmul_2d": (F.matmul, [(6, 5), (5, 3)]),
    "conv2d_strided": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(4, 3, 7, 7), (5, 3, 3, 3), (5,)]),
    "conv2d_patches": (lambda x, w, b: F.conv2d(x, w, b, stride=2), [(4, 3, 6, 6), (5, 3, 2, 2), (5,)]),
    "relu": (F.relu, [(4, 3, 5)]),
    "gelu": (F.gelu, [(4, 3, 5)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [(4, 3, 5)]),
    "add": (lambda a, b: a + b, [(4, 3, 5), (4, 3, 5)]),
    "reshape_transposed": (lambda a: F.reshape(F.transpose(a, 0, 1), (6, 5)), [(2, 3, 5)]),
    "attention": (tv.nn.scaled_dot_product_attention, [(2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4)]),
}


@pytest.mark.parametrize("name", sorted(SPLIT_OPS))
def test_ops_split_by_rows_are_exact(name, threads, parts_seen, monkeypatch, rng):
    # Split even these small inputs (the threshold exists for speed only), then check the split
    # op's gradients by central differences and its values against one thread.
    fn, shapes = SPLIT_OPS[name]
    inputs = [rng.standard_normal(shape) for shape in shapes]
    tensors = lambda: [tv.tensor(a, dtype=tv.float64) for a in inputs]  # noqa: E731
    threads(1)
    expected = fn(*tensors()).numpy()
    monkeypatch.setattr(parallel, "MIN_SPLIT", 1)
    threads(2)
    parts_seen.clear()
    np.testing.assert_allclose(fn(*tensors()).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert 2 in parts_seen
    tv.gradcheck(fn, *tensors())


class _GarbageNumpy:
    """NumPy, but ``empty`` hands out NaN-filled memory: what a reused block may hold."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype=dtype)


@pytest.mark.parametrize("n", [1, 2])
def test_write_framed_zeroes_the_frame_of_a_dirty_buffer(n, threads, parts_seen, monkeypatch, rng):
    from tinyvision.kernels.conv import write_framed
    threads(n)
    monkeypatch.setattr(parallel, "MIN_SPLIT", 1)
    grid = np.full((4, 3, 7, 9), np.nan)
    src = rng.standard_normal((4, 3, 5, 6))
    write_framed(grid, 1, 2, src)
    expected = np.zeros_like(grid)
    expected[:, :, 1:6, 2:8] = src
    np.testing.assert_array_equal(grid, expected)
    assert max(parts_seen, default=1) == n


@pytest.mark.parametrize("stride", [1, 2])
def test_flat_layout_fills_its_planes_from_dirty_memory(stride, monkeypatch, rng):
    # The planes are built in np.empty memory: every entry that is not a pixel must be written
    # as zero (padding, the space between images, the tail past the grid), or the convolution
    # reads garbage.
    from tinyvision.kernels.conv import FlatLayout
    from tinyvision.ops.conv import conv_out_size
    x = rng.standard_normal((2, 3, 7, 6))
    out = (conv_out_size(7, 3, stride, 1, 1), conv_out_size(6, 3, stride, 1, 1))
    lay = FlatLayout(x.shape, (3, 3), (stride, stride), (1, 1), (1, 1), out)
    clean = lay.load(x)
    with monkeypatch.context() as m:
        m.setattr(np, "empty", _GarbageNumpy.empty)
        planes = lay.load(x)
    assert not np.isnan(planes).any()
    np.testing.assert_array_equal(planes, clean)
    np.testing.assert_array_equal(lay.unload(planes[:, :, :lay.length]), x.transpose(1, 0, 2, 3))
    assert planes.sum() == pytest.approx(x.sum())  # nothing but the pixels is non-zero


def test_add_splits_large_sums_and_keeps_the_first_operands_layout(threads, parts_seen, monkeypatch, rng):
    threads(2)
    monkeypatch.setattr(parallel, "MIN_SPLIT", 1)
    a = np.ascontiguousarray(rng.standard_normal((4, 3, 5, 5)).transpose(1, 0, 2, 3))  # (C, N, ...)
    a = a.transpose(1, 0, 2, 3)                          # an (N, C, H, W) view of channel-major memory
    b = rng.standard_normal((4, 3, 5, 5))
    parts_seen.clear()
    s = parallel.add(a, b)
    np.testing.assert_array_equal(s, a + b)
    assert s.strides == a.strides and 2 in parts_seen
    np.testing.assert_array_equal(parallel.add(a, b[:1]), a + b[:1])  # broadcasting: plain +
    assert parallel.add(a.astype(np.float32), b).dtype == np.float64


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_never_reads_uninitialised_memory(stride, threads, monkeypatch, rng):
    # Every np.empty the convolution takes is NaN-filled here: forward and both gradients must
    # come out exactly as with clean memory (one NaN read anywhere would spread).
    threads(2)
    x, w = rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((5, 4, 3, 3))
    g = rng.standard_normal((3, 5) + ((9, 8) if stride == 1 else (5, 4)))

    def run():
        X = tv.tensor(x, dtype=tv.float64, requires_grad=True)
        W = tv.tensor(w, dtype=tv.float64, requires_grad=True)
        y = F.conv2d(X, W, stride=stride, padding=1)
        y.backward(tv.tensor(g, dtype=tv.float64))
        return y.numpy(), X.grad.numpy(), W.grad.numpy()
    clean = run()
    monkeypatch.setattr(np, "empty", _GarbageNumpy.empty)
    for a, b in zip(run(), clean):
        np.testing.assert_array_equal(a, b)


_SETTINGS_SCRIPT = """
import json, numpy, threadpoolctl
def blas():
    return [(i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()]
seen = {"before": blas()}
import tinyvision as tv
seen["import"] = blas()
x = tv.randn(8, 4, 64, 64)            # past parallel.MIN_SPLIT: the kernel splits its rows
tv.nn.functional.batch_norm(x)
seen["first op"] = blas()
tv.parallel.restore_process_settings()
seen["restored"] = blas()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("threads_n", [1, 2])
def test_importing_changes_no_process_setting_until_the_first_fast_kernel(threads_n):
    import json
    import os
    import subprocess
    import sys
    pytest.importorskip("threadpoolctl")
    env = dict(os.environ, TINYVISION_NUM_THREADS=str(threads_n), OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", _SETTINGS_SCRIPT], env=env, capture_output=True,
                         text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["import"] == seen["before"]                       # import changes nothing
    if ["openblas", 2] not in seen["before"]:
        pytest.skip(f"NumPy's BLAS here is not a thread-settable OpenBLAS: {seen['before']}")
    expected = 1 if threads_n > 1 else 2                          # one BLAS thread beside ours
    assert seen["first op"] == [[api, expected if api == "openblas" else n] for api, n in seen["before"]]
    assert seen["restored"] == seen["before"]


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))


def test_allocator_tuning_is_applied_once_and_restored_to_glibcs_defaults(monkeypatch):
    parallel.restore_process_settings()
    libc = _FakeLibc()
    monkeypatch.setattr(parallel, "_glibc", lambda: libc)
    parallel.for_rows(lambda rows: None, 4, 0)                   # a fast kernel's first call
    parallel.for_rows(lambda rows: None, 4, 0)
    assert libc.calls == list(parallel._MALLOC_TUNED.items())
    libc.calls.clear()
    parallel.restore_process_settings()
    assert libc.calls == list(parallel._MALLOC_DEFAULTS.items())
    assert parallel._MALLOC_DEFAULTS == {parallel.M_MMAP_THRESHOLD: 128 * 1024,
                                         parallel.M_TRIM_THRESHOLD: 128 * 1024,
                                         parallel.M_TOP_PAD: 128 * 1024}
    libc.calls.clear()
    monkeypatch.setenv("TINYVISION_MALLOC_TUNING", "0")
    parallel.apply_process_settings()
    parallel.restore_process_settings()
    assert libc.calls == []
