"""The self-checks of the chapters' exercises, one module per chapter (``checks/appendix_b.py``,
``checks/ch02.py``, ...): each check prints one line, PASS or FAIL and why.

An exercise is a markdown heading that begins "Exercise N", a stub cell the student fills in
(a value left as None, or a function whose body is ``return None  # your code``) and a
self-check cell ``check.NAME(answer, ...)``, ``check`` being the chapter's module here (the
chapter imports it under its "Exercises" heading: ``from checks import appendix_b as check``). A check builds its own inputs and reference (a gradient check,
shapes, reference values), so it needs nothing else from the chapter; its message says what is
wrong in terms the student can act on. The solutions are in ``chapters/solutions/CHAPTER.py``,
defining the stubs' names; tests/test_exercises.py runs every self-check on the stubs as they
stand in the notebook (each must FAIL) and on the solutions (each must PASS). A new chapter's
exercises get a module of their own here, built from ``self_check`` and ``as_array``.
"""
import functools

import numpy as np

import tinyvision as tv
from tinyvision.tensor import Function


def self_check(fn):
    """Turn ``fn(*answers) -> (passed, message)`` into a self-check that prints
    ``PASS name: message`` or ``FAIL name: message``. An answer still None, and an exception
    raised by the student's code, are FAILs that say so."""
    @functools.wraps(fn)
    def check(*answers):
        if any(a is None for a in answers):
            passed, message = False, "no answer yet: fill in the cell above (it is still None)"
        else:
            try:
                passed, message = fn(*answers)
            except Exception as e:      # the student's code failed: report it as the check's verdict
                passed, message = False, f"your code raised {type(e).__name__}: {e}"
        print(f"{'PASS' if passed else 'FAIL'} {fn.__name__}: {message}")
    return check


def as_array(value, shape, what):
    """``value`` as a float64 array of ``shape``, or the one-line reason it is not."""
    if value is None:
        return None, f"{what} returned None; return an array of shape {shape}"
    value = np.asarray(value, dtype=np.float64)
    if value.shape != shape:
        return None, f"{what} has shape {value.shape}, expected {shape}"
    return value, None


class _StudentOp(Function):
    """An op whose forward is ``forward(z)`` and whose backward is the student's:
    ``backward(z, out, grad) -> dL/dz``; tv.gradcheck on it checks their backward numerically."""

    def forward(self, z, forward=None, backward=None):
        self.z, self.out, self.student_backward = z, forward(z), backward
        return self.out

    def backward(self, grad):
        return self.student_backward(self.z, self.out, grad)


def gradcheck_backward(forward, backward, z, hint):
    """tv.gradcheck of the student's ``backward`` for the op ``forward`` at the float64 array z:
    (passed, message), the message ending in ``hint`` when they disagree."""
    zt = tv.tensor(z, dtype=np.float64, requires_grad=True)
    result = tv.gradcheck(lambda t: _StudentOp.apply(t, forward=forward, backward=backward), zt,
                          raise_exception=False)
    if not result:
        return False, f"tv.gradcheck disagrees: {str(result).splitlines()[-1].strip()} ({hint})"
    return True, f"tv.gradcheck (central differences) agrees with your gradient on a {z.shape} input"
