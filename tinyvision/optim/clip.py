"""Gradient clipping: by the global norm (the usual choice for Transformers) or by value.

Both replace each gradient's array with a new, clipped one instead of writing into it: the
autograd engine may hand one gradient array to several parameters (``a + b`` passes the same
upstream gradient to both, and reshapes pass views), and an in-place scale would then hit
the shared array once per parameter.
"""
import math

from .. import backend
from ..tensor import Tensor


def _grads(params):
    params = [params] if isinstance(params, Tensor) else list(params)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(params, max_norm, norm_type=2.0):
    """Rescale the gradients together so that their global norm is at most max_norm.

    With the norm over all gradients at once (for norm_type 2)

        ||g|| = sqrt(sum_i ||g_i||^2),

    every g_i is multiplied by max_norm / (||g|| + 1e-6) when ||g|| > max_norm, and left
    untouched (bit for bit) otherwise. The 1e-6 is PyTorch's: it guards against a zero norm
    and makes the results match PyTorch's. The direction of the full gradient is kept; only
    its length is capped. A non-finite norm (an inf or NaN gradient) turns every gradient into
    NaN, as in PyTorch, so the failure shows instead of being clipped away.

    Args:
        params: a Tensor or an iterable of Tensors; those without ``.grad`` are skipped.
        max_norm: the largest allowed norm.
        norm_type: p of the p-norm (``float('inf')``: the largest absolute value).

    Returns:
        The total norm before clipping, as a Python float (on a GPU reading it synchronises).
    """
    params = _grads(params)
    if not params:
        return 0.0
    norm_type = float(norm_type)
    xp = backend.array_module(params[0].grad.data)
    flats = [p.grad.data.reshape(-1) for p in params]
    if norm_type == math.inf:
        total = float(max(float(abs(f).max()) if f.size else 0.0 for f in flats))
    elif norm_type == 2.0:
        # A dot product per gradient (BLAS, no |g|^2 temporary), summed on the device so that
        # a GPU synchronises once, at the final float().
        total = math.sqrt(float(sum(xp.dot(f, f) for f in flats)))
    else:
        total = float(sum((abs(f) ** norm_type).sum() for f in flats)) ** (1.0 / norm_type)
    coef = float(max_norm) / (total + 1e-6)
    if not coef >= 1.0:  # also true when total is NaN: NaN gradients stay visible
        for p in params:
            p.grad.data = p.grad.data * coef
    return total


def clip_grad_value_(params, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value] (the elementwise variant:
    it changes the gradient's direction, unlike ``clip_grad_norm_``)."""
    c = float(clip_value)
    if c < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _grads(params):
        xp = backend.array_module(p.grad.data)
        p.grad.data = xp.clip(p.grad.data, -c, c)
