"""Array backends, devices, dtypes and random numbers.

tinyvision computes on plain arrays: NumPy arrays on the CPU, CuPy arrays on an NVIDIA GPU.
Every op asks this module for the array module ``xp`` of its inputs and writes its formula once
against the shared NumPy API, so one implementation serves both devices.

Devices are the strings ``"cpu"`` and ``"cuda"``. The default device comes from
``set_default_device`` or, at import time, the environment variable ``TINYVISION_DEVICE``.
"""
import os

import numpy as np

DEVICES = ("cpu", "cuda")
float32 = np.float32
float64 = np.float64
_cupy = None          # the cupy module once imported successfully
_cupy_error = None    # why importing it failed, for the error message


def _load_cupy():
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()  # raises where there is no GPU or driver
            _cupy = cupy
        except Exception as exc:  # ImportError, CUDARuntimeError, ...
            _cupy_error = exc
    return _cupy


def cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    return _load_cupy() is not None


def cupy():
    """The cupy module, or a RuntimeError that says how to get it."""
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' needs CuPy and an NVIDIA GPU, but they are not available "
            f"({type(_cupy_error).__name__}: {_cupy_error}). Install the GPU extra with "
            "`pip install 'tinyvision[gpu]'` (or `pip install cupy-cuda12x`) on a machine "
            "with a CUDA driver, or use device='cpu'.")
    return cp


def check_device(device):
    """Normalise a device name: 'cpu', 'cuda' (also 'cuda:0' and 'gpu')."""
    device = str(device).lower()
    if device in ("gpu",) or device.startswith("cuda"):
        device = "cuda"
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    if device == "cuda":
        cupy()
    return device


_default_device = "cpu"


def set_default_device(device):
    """Make new tensors, parameters and random numbers live on ``device`` ('cpu' or 'cuda')."""
    global _default_device
    _default_device = check_device(device)


def get_default_device():
    return _default_device


def xp_for(device):
    """The array module (numpy or cupy) that holds arrays on ``device``."""
    return cupy() if device == "cuda" else np


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    return "cuda" if _cupy is not None and isinstance(array, _cupy.ndarray) else "cpu"


def array_module(array):
    return _cupy if device_of(array) == "cuda" else np


def to_device(array, device):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    if device == device_of(array):
        return array
    if device == "cuda":
        return cupy().asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array):
    return to_device(array, "cpu")


# ---------------------------------------------------------------- random numbers
# One generator per backend, reseeded together by manual_seed. Both draw float32 directly
# (Generator.standard_normal(dtype=float32)), so a float32 model never builds a float64
# temporary the size of a weight or an activation.
_generators = {}


def manual_seed(seed):
    """Seed tinyvision's random numbers on every backend (initialisation, dropout, shuffling)."""
    _generators["cpu"] = np.random.default_rng(seed)
    if _cupy is not None:
        _generators["cuda"] = _cupy.random.default_rng(seed)
    elif "cuda" in _generators:
        del _generators["cuda"]


def generator(device=None):
    """The backend's random generator (numpy.random.Generator or its CuPy twin)."""
    device = device or _default_device
    if device not in _generators:
        _generators[device] = xp_for(device).random.default_rng()
    return _generators[device]


def get_rng_state():
    """The CPU generator's state, a JSON-friendly dict (for checkpoints)."""
    return generator("cpu").bit_generator.state


def set_rng_state(state):
    generator("cpu").bit_generator.state = state


def randn(shape, dtype=float32, device=None):
    return generator(device).standard_normal(shape, dtype=dtype)


def rand(shape, dtype=float32, device=None):
    return generator(device).random(shape, dtype=dtype)


_env_device = os.environ.get("TINYVISION_DEVICE")
if _env_device:
    set_default_device(_env_device)
