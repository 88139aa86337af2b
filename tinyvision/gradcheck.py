"""Numerical gradient checking: the test every op in tinyvision passes.

For a function f of tensors x_1..x_k with output y, pick a random upstream gradient G of y's
shape and the scalar L = sum(G * f(x)). Backpropagation gives dL/dx analytically; central
differences give it numerically, element by element:

    dL/dx_j ~ (L(x + h e_j) - L(x - h e_j)) / (2h),   error O(h^2)

in float64. The step h = 1e-5 balances the truncation error, O(h^2) relative, against the
rounding error of L, about 1e-16 |L| / h: with h = 1e-6 a sum over a few hundred outputs
already leaves 1e-8 of noise in every numerical derivative. A random G matters:
with G = 1 many true gradients vanish (softmax, batch norm: the rows of their Jacobians sum to
zero) and a wrong backward would pass unnoticed.
"""
import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when analytic and numerical gradients disagree."""


class GradcheckResult:
    """Outcome of a check: ``ok``, and per checked input its index, max relative error,
    the worst element's index and both gradient values there."""

    def __init__(self, entries, tol):
        self.entries, self.tol = entries, tol
        self.ok = all(e["max_rel_error"] <= tol for e in entries)

    def __bool__(self):
        return self.ok

    def __repr__(self):
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'} (tolerance {self.tol:g})"]
        for e in self.entries:
            flag = "ok" if e["max_rel_error"] <= self.tol else "MISMATCH"
            lines.append(
                f"  input {e['input']} shape {e['shape']}: max relative error {e['max_rel_error']:.2e} "
                f"at element {e['worst_index']} (analytic {e['analytic']:.8g}, numeric {e['numeric']:.8g}) {flag}")
        return "\n".join(lines)


def gradcheck(fn, *inputs, eps=1e-5, tol=1e-6, seed=0, raise_exception=True):
    """Compare ``fn``'s backpropagated gradients with central differences.

    Args:
        fn: callable taking ``inputs`` and returning one Tensor.
        inputs: Tensors or arrays. Floating ones are checked (only those with
            requires_grad=True if any has it); they are copied to float64 first.
        eps: the finite-difference step h.
        tol: largest accepted relative error per element,
            |a - n| / max(|a|, |n|, 1e-2 * max(1, max |n|)); the floor measures gradients
            below 1% of the input's largest one against that scale, not against themselves
            (their numerical value is mostly rounding noise).
        seed: seed of the random upstream gradient G.
        raise_exception: raise ``GradcheckError`` with the report on failure (else return it).

    Returns:
        GradcheckResult, truthy when every checked input passed; print it for the report.
    """
    args = [x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=np.asarray(x).dtype) for x in inputs]
    flagged = [a.requires_grad for a in args]
    check = [(a.dtype.kind == "f") and (flagged[i] or not any(flagged)) for i, a in enumerate(args)]
    if not any(check):
        raise ValueError("gradcheck: no floating-point input to check")
    args = [Tensor(a.data.astype(np.float64), dtype=np.float64, requires_grad=True) if c else a.detach()
            for a, c in zip(args, check)]
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned {out.dtype} for float64 inputs; "
                        "something inside casts to a lower precision")
    xp = backend.array_module(out.data)
    G = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(G)

    def objective():
        with no_grad():
            return float((fn(*args).data * G).sum())

    entries = []
    for i, (a, c) in enumerate(zip(args, check)):
        if not c:
            continue
        analytic = backend.to_numpy(a.grad.data) if a.grad is not None else np.zeros(a.shape)
        numeric = np.zeros(a.shape)
        flat = a.data.reshape(-1)  # a view: perturbing it perturbs the input
        for j in range(flat.size):
            orig = float(flat[j])
            flat[j] = orig + eps
            plus = objective()
            flat[j] = orig - eps
            minus = objective()
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        floor = 1e-2 * max(1.0, float(np.abs(numeric).max())) if numeric.size else 1.0
        rel = np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
        worst = np.unravel_index(int(np.argmax(rel)), a.shape) if rel.size else ()
        entries.append(dict(input=i, shape=a.shape, max_rel_error=float(rel.max()) if rel.size else 0.0,
                            worst_index=tuple(int(k) for k in worst),
                            analytic=float(analytic[worst]) if rel.size else 0.0,
                            numeric=float(numeric[worst]) if rel.size else 0.0))
    result = GradcheckResult(entries, tol)
    if not result.ok and raise_exception:
        raise GradcheckError(repr(result))
    return result
