"""Fast CPU kernels, and the switch that runs the readable reference path instead.

``ops/`` holds the math: each op's forward and backward written as the formula, in NumPy-API
code that runs on NumPy and CuPy alike (the reference path). Some ops also have a fast CPU
kernel here that computes the same thing with a memory layout, blocking or threads chosen for
speed. An op picks its kernel with ``reference_enabled()``: the same names, the same
signatures, and tests require both paths to give equal results.

    tv.use_reference_kernels()            # from now on, every op runs its reference path
    tv.use_reference_kernels(False)       # back to the fast kernels
    with tv.use_reference_kernels():      # only inside the block
        loss = model(x).sum()

``TINYVISION_REFERENCE=1`` in the environment starts a process on the reference path.
"""
import os

_reference = os.environ.get("TINYVISION_REFERENCE", "0").strip() not in ("", "0")


def reference_enabled():
    """True while ops run their reference path (``use_reference_kernels``)."""
    return _reference


class use_reference_kernels:
    """Run every op's readable reference path (``enabled=True``) or its fast kernel (False).

    Called as a function it switches until the next call; used as a context manager it
    switches for the ``with`` block and then restores the previous setting."""

    def __init__(self, enabled=True):
        global _reference
        self.previous, _reference = _reference, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _reference
        _reference = self.previous
