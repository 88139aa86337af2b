"""Intra-op threads for the NumPy backend: one op's work split over the CPU's cores.

NumPy runs each call on one core; only BLAS uses more. The fast kernels (``tinyvision.kernels``)
cut an op's work into independent parts (row blocks, column blocks) and run them on threads
here. NumPy releases the GIL inside copies, ufunc loops and BLAS calls, so plain Python threads
run these parts truly in parallel. The reference path (``tv.use_reference_kernels()``) and GPU
arrays never come here.

How. ``map_parts(fn, items)`` cuts ``items`` (a list of blocks, a range of rows) into one
contiguous part per thread, runs ``fn(part)`` for each part (the calling thread takes the
first) and returns the results in order. Callers make parts independent (disjoint outputs,
per-part partial sums added afterwards), so no locks are needed and the result does not
depend on timing: only the order of a few floating-point additions changes with the
thread count. ``for_rows`` and ``matmul`` are the two common uses: row-wise work
(normalisation statistics) and large matrix products.

Threads: ``set_num_threads(n)``; by default the environment variable
``TINYVISION_NUM_THREADS``, else the number of cores this process may run on (so
``taskset -c 0`` means one thread). With one thread everything runs inline, unchanged.

Process settings. Importing tinyvision changes nothing outside it. The first fast kernel (or
``set_num_threads``) applies two process-wide settings the kernels are tuned for, and
``restore_process_settings()`` takes them back:
- OpenBLAS runs at one thread while tinyvision runs more than one: its idle threads spin after
  every call and take the very cores the kernels' threads need, so every large GEMM goes
  through ``matmul`` here, which splits it itself;
- glibc's allocator keeps freed memory in the process (``mallopt``) instead of returning it to
  the OS at once: training frees and reallocates the same large arrays every step, and fresh
  pages must be faulted in again. ``TINYVISION_MALLOC_TUNING=0`` leaves the allocator alone.
Measurements behind these choices: docs/performance.md.
"""
import ctypes
import functools
import glob
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _default_threads():
    env = os.environ.get("TINYVISION_NUM_THREADS")
    if env:
        if not env.strip().isdigit() or int(env) < 1:
            raise ValueError(f"TINYVISION_NUM_THREADS must be a positive integer, got {env!r}")
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_pool = None
_pool_lock = threading.Lock()  # callers on several threads (a prefetching loader) share one pool
_inside = threading.local()    # set in worker threads: nested calls run inline, never deadlock


def _forget_pool():
    """In a forked child the pool's threads do not exist: start a new pool when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


# ---------------------------------------------------------------- process settings
# NumPy's wheels bundle OpenBLAS with prefixed symbols; other builds export the plain names.
# Where neither is found (MKL, Accelerate) the count is left alone.
def _find_openblas():
    libdirs = [os.path.join(os.path.dirname(np.__file__), ".libs"),
               os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")]
    candidates = [p for d in libdirs for p in glob.glob(os.path.join(d, "*openblas*"))]
    for path in candidates + [None]:  # None: symbols already loaded into the process
        try:
            lib = ctypes.CDLL(path)
        except (OSError, TypeError):  # TypeError: Windows cannot open the process itself (None)
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None


@functools.cache
def _openblas():
    """(get_num_threads, set_num_threads) of NumPy's OpenBLAS, or None."""
    return _find_openblas()


@functools.cache
def _glibc():
    """The C library when it is glibc on Linux (it has ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return None


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
# The kernels' setting: blocks up to glibc's maximum mmap threshold come from the heap, the
# heap top is never handed back eagerly and the heap grows in large steps.
_MALLOC_TUNED = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 256 * 2**20}
# glibc's documented defaults (mallopt(3)); mallopt cannot read the current values back.
_MALLOC_DEFAULTS = {M_MMAP_THRESHOLD: 128 * 2**10, M_TRIM_THRESHOLD: 128 * 2**10, M_TOP_PAD: 128 * 2**10}

_applied = False     # whether the process settings are in force
_blas_own = None     # OpenBLAS's thread count before tinyvision changed it
_malloc_tuned = False


def _mallopt(settings):
    for param, value in settings.items():
        _glibc().mallopt(param, value)


def apply_process_settings():
    """Set the process-wide settings the fast kernels are tuned for (module docstring):
    OpenBLAS at one thread while ``get_num_threads() > 1`` (its own count with one), and
    glibc's allocator tuning. Runs by itself at the first fast kernel and in ``set_num_threads``."""
    global _applied, _blas_own, _malloc_tuned
    blas = _openblas()
    if blas:
        if not _applied:
            _blas_own = blas[0]()
        blas[1](1 if _threads > 1 else _blas_own)
    if not _malloc_tuned and os.environ.get("TINYVISION_MALLOC_TUNING", "1") != "0" and _glibc():
        _mallopt(_MALLOC_TUNED)
        _malloc_tuned = True
    _applied = True


def restore_process_settings():
    """Undo ``apply_process_settings``: OpenBLAS gets back the thread count it had before, and
    glibc's allocator gets glibc's default thresholds (128 KiB each). mallopt cannot read its
    settings back, so "restored" means glibc's defaults, not values another library may have
    set; and once set, glibc no longer moves the mmap threshold by itself as it does in a
    fresh process. The next fast kernel applies the settings again: call this when leaving
    tinyvision for other NumPy work in the same process."""
    global _applied, _malloc_tuned
    if _applied and _openblas():
        _openblas()[1](_blas_own)
    if _malloc_tuned:
        _mallopt(_MALLOC_DEFAULTS)
        _malloc_tuned = False
    _applied = False


def _ensure_settings():
    if not _applied:
        apply_process_settings()


def blas_num_threads():
    """OpenBLAS's thread count, or None where the BLAS is not an OpenBLAS we can find."""
    return _openblas()[0]() if _openblas() else None


def get_num_threads():
    """Threads an op may split its work over (1: no splitting)."""
    return _threads


def set_num_threads(n):
    """Use ``n`` threads per op on the CPU, and apply the process settings for that count:
    OpenBLAS runs at one thread while n > 1 and at its own count with n = 1."""
    global _threads, _pool
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    with _pool_lock:
        if _pool is not None and n != _threads:
            _pool.shutdown()
            _pool = None
        _threads = n
    apply_process_settings()


def compute_threads():
    """The cores tinyvision's CPU work runs on: its own threads, or with just one of those,
    the threads OpenBLAS runs GEMMs on. The fair count to give another library (PyTorch) in a
    benchmark."""
    return _threads if _threads > 1 else (blas_num_threads() or 1)


_threads = _default_threads()


# ---------------------------------------------------------------- splitting work
def split(items, parts):
    """``items`` (a sequence) cut into at most ``parts`` contiguous, nearly equal pieces."""
    n = len(items)
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [items[bounds[i]:bounds[i + 1]] for i in range(parts)]


def _run_inside(fn, part):
    _inside.active = True
    try:
        return fn(part)
    finally:
        _inside.active = False


def map_parts(fn, items, threads=None):
    """[fn(part) for part in split(items, threads)], the parts run on separate threads.

    ``threads`` defaults to ``get_num_threads()``; calls from inside a part run inline
    (one level of parallelism). Exceptions from any part are raised here."""
    global _pool
    _ensure_settings()
    threads = _threads if threads is None else threads
    if threads <= 1 or len(items) <= 1 or getattr(_inside, "active", False):
        return [fn(items)]
    parts = split(items, threads)
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, _threads - 1), thread_name_prefix="tinyvision")
    futures = [_pool.submit(_run_inside, fn, part) for part in parts[1:]]
    try:
        first = _run_inside(fn, parts[0])
    except BaseException:
        for f in futures:  # let the other parts finish writing into the caller's arrays
            f.exception()
        raise
    return [first] + [f.result() for f in futures]


def map_blocks(fn, blocks):
    """[fn(block) for block in blocks], the blocks handed out one at a time to whichever thread
    is free (dynamic scheduling); the results come back in the blocks' order.

    Why not ``map_parts``' fixed shares: cores seldom run at one speed for long (the host,
    other processes); taking blocks from a shared counter, the slower thread simply does fewer.
    The result does not depend on timing: each block's result has its own place, so a caller
    summing them sums in one fixed order. Calls from inside a part run inline, as with
    ``map_parts``."""
    _ensure_settings()
    blocks = list(blocks)
    if _threads <= 1 or len(blocks) <= 1 or getattr(_inside, "active", False):
        return [fn(block) for block in blocks]
    results = [None] * len(blocks)
    state = {"next": 0}  # the next block to hand out; len(blocks) once all are out or one failed
    lock = threading.Lock()

    def worker(_):
        while True:
            with lock:
                i = state["next"]
                state["next"] = min(i + 1, len(blocks))
            if i == len(blocks):
                return
            try:
                results[i] = fn(blocks[i])
            except BaseException:
                with lock:  # the others stop after their current block; map_parts re-raises
                    state["next"] = len(blocks)
                raise
    map_parts(worker, range(min(_threads, len(blocks))))
    return results


# Below this many elements (or multiply-adds, for matmul) an op runs on one thread: handing a
# part to another thread costs about as much as the work it would save.
MIN_SPLIT = 2**17


def split_size(a):
    """The work ``for_rows`` is told about for array ``a``: its size, or 0 for a GPU array
    (never split: CuPy already runs each op in parallel)."""
    return a.size if isinstance(a, np.ndarray) else 0


def for_rows(fn, n, size):
    """fn(rows) for slices ``rows`` that cover range(n), split over threads when the op
    touches at least MIN_SPLIT elements (``size``). Unsplit, fn gets slice(None), the whole:
    callers pass size 0 where the arrays do not share their first axis (or live on a GPU)."""
    _ensure_settings()
    if size < MIN_SPLIT or _threads == 1 or n < 2:
        return [fn(slice(None))]
    return map_parts(lambda r: fn(slice(r.start, r.stop)), range(n))


def elementwise(fn, *arrays):
    """fn(*blocks) on matching row blocks of same-shaped arrays (outputs among them, written
    with ``out=``), split over threads when large; otherwise fn(*arrays) once. Any layout
    works: a block is the same index range of the first axis in every array."""
    a = arrays[0]
    if (a.ndim == 0 or not isinstance(a, np.ndarray)
            or any(x.shape != a.shape for x in arrays[1:])):
        fn(*arrays)
        return
    for_rows(lambda r: fn(*(x[r] for x in arrays)), a.shape[0], a.size)


def add(a, b):
    """a + b as a new array in a's memory order, split over threads when large (NumPy arrays
    of one shape); anything else (broadcasting, CuPy) is a plain ``a + b``."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.shape != b.shape:
        return a + b
    out = np.empty_like(a, dtype=np.result_type(a, b))
    elementwise(lambda o, x, y: np.add(x, y, out=o), out, a, b)
    return out


def matmul(a, b):
    """a @ b for NumPy arrays of two or more axes, split over threads along a's first axis
    (the rows of a matrix, or the stack of a batched product) when it is large; anything
    else (CuPy arrays, vectors, broadcasting of a's stack) is one plain ``a @ b``."""
    _ensure_settings()
    if not isinstance(a, np.ndarray) or a.ndim < 2 or b.ndim < 2 or _threads == 1:
        return a @ b
    if b.ndim > 2 and b.shape[:-2] != a.shape[:-2]:
        return a @ b
    work = a.size * b.shape[-1]
    if work < MIN_SPLIT * 64 or a.shape[0] < 2:
        return a @ b
    out = np.empty(a.shape[:-1] + b.shape[-1:], dtype=np.result_type(a, b))
    stacked = b.ndim > 2

    def product(rows):
        np.matmul(a[rows.start:rows.stop], b[rows.start:rows.stop] if stacked else b,
                  out=out[rows.start:rows.stop])
    map_parts(product, range(a.shape[0]))
    return out


def assign_rows(dst, src):
    """dst[...] = src, the copy split over threads along the first axis (both views of the
    same leading length). For the large layout copies around a convolution; a GPU array is
    assigned in one call."""
    if dst.shape[0] != src.shape[0]:
        raise ValueError(f"assign_rows: leading axes differ, {dst.shape} vs {src.shape}")

    def copy(rows):
        dst[rows] = src[rows]
    for_rows(copy, dst.shape[0], split_size(dst))


def contiguous(a):
    """A C-contiguous copy of ``a`` (``a`` itself when it already is one), made by
    ``assign_rows``."""
    if a.flags.c_contiguous:
        return a
    if not isinstance(a, np.ndarray):
        return a.copy()
    out = np.empty(a.shape, dtype=a.dtype)
    assign_rows(out, a)
    return out


def reshape(a, shape):
    """a.reshape(shape); where that needs a copy (a transposed view), the copy is made by
    ``contiguous``, split over threads."""
    if not isinstance(a, np.ndarray) or a.flags.c_contiguous or a.size < MIN_SPLIT or _threads == 1:
        return a.reshape(shape)
    try:
        return a.reshape(shape, copy=False)
    except ValueError:  # not expressible as a view
        return contiguous(a).reshape(shape)
    except TypeError:   # NumPy before 2.1 has no copy= argument
        return a.reshape(shape)
