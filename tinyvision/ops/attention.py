"""Scaled dot-product attention as one fused op with a hand-derived backward.

    S = Q K^T / sqrt(d) [+ bias] [= -inf where mask is False]     logits   (..., Nq, Nk)
    A = softmax(S) along the keys                                  weights  (..., Nq, Nk)
    O = A V                                                        output   (..., Nq, dv)

Composed from matmul, mul, add, softmax and matmul ops, training would keep S, the scaled S,
the biased S and A alive for backward, one array per op. Fused, it keeps A (and the dropout
mask); backward is four products and the softmax's vector-Jacobian product. With G = dL/dO:

    dV = A^T G                                  (..., Nk, dv)
    dA = G V^T                                  (..., Nq, Nk)
    dS = A * (dA - rowsum(dA * A))              softmax's vector-Jacobian product
    dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d),   dbias = dS

With attention dropout, O = (A * M) V with M the inverted-dropout mask (0 or 1 / (1 - p));
then dV = (A * M)^T G and dA = (G V^T) * M.

``attention_forward`` and ``attention_backward`` below are these formulas (the reference path).
For NumPy arrays the op calls ``kernels.attention`` instead: the same math computed in place
in one (..., Nq, Nk) buffer, split over threads.
"""
import math

import numpy as np

from .. import backend
from ..kernels import attention as fast, reference_enabled
from ..tensor import Function, Tensor
from .reduce import softmax, softmax_backward


def attention_forward(q, k, v, bias, mask, scale, drop):
    """O = (softmax(Q K^T * scale + bias, masked) * drop) V.

    q: (..., Nq, d); k: (..., Nk, d); v: (..., Nk, dv); bias: broadcastable to (..., Nq, Nk)
    or None; mask: boolean, broadcastable to (..., Nq, Nk) (True = attend) or None; drop: the
    dropout mask M of A's shape, or None. Returns O (..., Nq, dv) and the cache for backward.
    """
    s = (q @ k.swapaxes(-1, -2)) * scale
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = backend.array_module(s).where(mask, s, -np.inf)
    a = softmax(s)
    out = (a if drop is None else a * drop) @ v
    return out, (q, k, v, a, scale, drop)


def attention_backward(g, cache, needs):
    """(dL/dq, dL/dk, dL/dv, dL/dbias) from g = dL/dO (..., Nq, dv); ``needs`` says which are
    wanted (None for the others)."""
    q, k, v, a, scale, drop = cache
    need_q, need_k, need_v, need_bias = needs
    dv = (a if drop is None else a * drop).swapaxes(-1, -2) @ g if need_v else None
    da = g @ v.swapaxes(-1, -2)
    if drop is not None:
        da = da * drop
    ds = softmax_backward(da, a)
    dq = (ds @ k) * scale if need_q else None
    dk = (ds.swapaxes(-1, -2) @ q) * scale if need_k else None
    return dq, dk, dv, (ds if need_bias else None)


class ScaledDotProductAttention(Function):
    """The fused op: inputs q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) and optionally a
    bias broadcastable to (..., Nq, Nk); options mask (boolean array, True = attend), scale,
    dropout_p. Leading axes broadcast. See the module docstring for the formulas."""

    def forward(self, q, k, v, bias=None, mask=None, scale=1.0, dropout_p=0.0):
        drop = None
        if dropout_p > 0.0:  # drawn here, so that both paths drop the same weights
            nq_nk = (q.shape[-2], k.shape[-2])
            shape = np.broadcast_shapes(q.shape[:-2] + nq_nk, k.shape[:-2] + nq_nk,
                                        *(m.shape for m in (bias, mask) if m is not None))
            dtype = np.result_type(q.dtype, k.dtype)
            keep = backend.rand(shape, dtype=dtype, device=backend.device_of(q)) >= dropout_p
            drop = keep.astype(dtype) * (1.0 / (1.0 - dropout_p))
        self.fast = isinstance(q, np.ndarray) and not reference_enabled()
        out, self.cache = (fast.attention_forward if self.fast else attention_forward)(
            q, k, v, bias, mask, scale, drop)
        return out

    def backward(self, g):
        needs = self.needs_input_grad[:4] + (False,) * (4 - len(self.needs_input_grad))
        return (fast.attention_backward if self.fast else attention_backward)(g, self.cache, needs)


class PackedSelfAttention(ScaledDotProductAttention):
    """The same op on one packed input qkv (3, ..., N, d), as a fused qkv projection makes it.
    Taking q, k, v as slices of the packed tensor would make backward build three zero-filled
    full-size gradients and add them up; here backward stacks dQ, dK, dV into the one packed
    gradient."""

    def forward(self, qkv, bias=None, mask=None, scale=1.0, dropout_p=0.0):
        return super().forward(qkv[0], qkv[1], qkv[2], bias, mask=mask, scale=scale, dropout_p=dropout_p)

    def backward(self, g):
        need_qkv = self.needs_input_grad[0]
        self.needs_input_grad = (need_qkv,) * 3 + self.needs_input_grad[1:]
        dq, dk, dv, dbias = super().backward(g)
        return (self.xp.stack([dq, dk, dv]) if need_qkv else None), dbias


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0, training=False, bias=None, scale=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) [+ bias]) V, fused (one op, see the module
    docstring for the backward).

    Args:
        q: queries (..., Nq, d); k: keys (..., Nk, d); v: values (..., Nk, dv) (Tensors). The
            leading axes (batch, heads) broadcast.
        mask: optional boolean Tensor or array broadcastable to (..., Nq, Nk): True where a
            query may attend to a key; False logits become -inf (zero weight). Every query
            needs at least one True key, else its row is NaN (0 / 0), as in PyTorch.
        dropout_p: attention dropout on the weights A (inverted), applied when ``training``.
        bias: optional Tensor broadcastable to (..., Nq, Nk) added to the logits (relative
            position bias); it receives a gradient.
        scale: the logit scale, 1 / sqrt(d) by default.

    Returns:
        O (..., Nq, dv).
    """
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention expects q (..., Nq, d), k (..., Nk, d), "
                         f"v (..., Nk, dv); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {q.shape} and k {k.shape} need the same feature "
                         f"size d, k and v {v.shape} the same number of keys Nk")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention dropout probability must be in [0, 1), got {dropout_p}")
    mask = as_mask(mask, q.device)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    inputs = (q, k, v) if bias is None else (q, k, v, bias)
    return ScaledDotProductAttention.apply(*inputs, mask=mask, scale=scale,
                                           dropout_p=float(dropout_p) if training else 0.0)


def as_mask(mask, device):
    """An attention mask (Tensor, array or nested list; None passes) as a boolean array on
    ``device``: a host mask for GPU tensors is copied over once here, not inside the op."""
    if mask is None:
        return None
    mask = mask.data if isinstance(mask, Tensor) else mask
    mask = backend.to_device(mask if hasattr(mask, "dtype") else np.asarray(mask), device)
    if mask.dtype != np.bool_:
        raise TypeError(f"attention mask must be boolean (True = attend), got dtype {mask.dtype}")
    return mask
