"""Scaled dot-product attention as one fused op with a hand-derived backward.

    S = Q K^T / sqrt(d) [+ bias] [= -inf where mask is False]     logits   (..., Nq, Nk)
    A = softmax(S) along the keys                                  weights  (..., Nq, Nk)
    O = A V                                                        output   (..., Nq, dv)

Composed from matmul, mul, add, softmax and matmul ops, training would keep S, the scaled S,
the biased S and A alive for backward and run a separate pass (and temporary) per op. Fused,
forward builds S in one buffer, turns it into A in place and keeps only A (and the dropout
mask); backward is four GEMMs and one elementwise pass. With G = dL/dO:

    dV = A^T G                                  (..., Nk, dv)
    dA = G V^T                                  (..., Nq, Nk)
    dS = A * (dA - rowsum(dA * A))              softmax's vector-Jacobian product
    dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d),   dbias = dS

The row sums rowsum(dA * A)_i = sum_j (G V^T)_ij A_ij = sum_c G_ic (A V)_ic = rowsum(G * O)_i
are taken over the output's dv features instead of the Nk keys (FlashAttention's trick): no
(Nq, Nk) product is formed for them. With attention dropout, O = (A * M) V with M the
inverted-dropout mask (0 or 1 / (1 - p)); then dA = (G V^T) * M and the same identity holds
with A * M in place of A.
"""
import math

import numpy as np

from .. import backend, parallel
from ..tensor import Function, Tensor


def _softmax_inplace(xp, s):
    """s <- softmax(s) along the last axis, in place: exp(S - max) / sum."""
    s -= s.max(axis=-1, keepdims=True)
    xp.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)


class ScaledDotProductAttention(Function):
    """The fused op: inputs q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) and optionally a
    bias broadcastable to (..., Nq, Nk); options mask (boolean array, True = attend), scale,
    dropout_p. Leading axes broadcast. See the module docstring for the formulas."""

    def forward(self, q, k, v, bias=None, mask=None, scale=1.0, dropout_p=0.0):
        xp = self.xp
        s = parallel.matmul(q, k.swapaxes(-1, -2))      # the one (..., Nq, Nk) buffer
        s *= scale                                      # scale S, not Q: no copy of Q is made
        if bias is not None:
            if np.broadcast_shapes(s.shape, bias.shape) == s.shape:
                s += bias                               # in place when the bias broadcasts into S
            else:
                s = s + bias                            # a bias with more leading axes than S
        if mask is not None:
            s = xp.where(mask, s, -xp.inf)
        parallel.for_rows(lambda r: _softmax_inplace(xp, s[r]), len(s), parallel.split_size(s))
        self.a, self.q, self.k, self.v, self.scale = s, q, k, v, scale
        self.drop = None
        if dropout_p > 0.0:
            keep = backend.rand(s.shape, dtype=s.dtype, device=backend.device_of(s)) >= dropout_p
            self.drop = keep.astype(s.dtype) * (1.0 / (1.0 - dropout_p))
            s = s * self.drop
        self.out = parallel.matmul(s, v)
        return self.out

    def backward(self, g):
        a, q, k, v, scale, drop = self.a, self.q, self.k, self.v, self.scale, self.drop
        need_q, need_k, need_v = self.needs_input_grad[:3]
        need_bias = len(self.needs_input_grad) > 3 and self.needs_input_grad[3]
        dv = parallel.matmul((a if drop is None else a * drop).swapaxes(-1, -2), g) if need_v else None
        if not (need_q or need_k or need_bias):
            return None, None, dv, None
        ds = parallel.matmul(g, v.swapaxes(-1, -2))     # dA (of the dropped weights)
        if drop is not None:
            ds *= drop                                  # dA of the softmax output

        def softmax_backward(r):                        # dS = A (dA - rowsum(G O)), in place
            ds[r] -= (g[r] * self.out[r]).sum(axis=-1, keepdims=True)
            ds[r] *= a[r]
        aligned = a.shape == ds.shape == g.shape  # same rows in all three
        parallel.for_rows(softmax_backward, len(ds), parallel.split_size(ds) if aligned else 0)
        # Scale the fresh (N, d) products in place rather than dS (which is also dbias).
        dq = dk = None
        if need_q:
            dq = parallel.matmul(ds, k)
            dq *= scale
        if need_k:
            dk = parallel.matmul(ds.swapaxes(-1, -2), q)
            dk *= scale
        return dq, dk, dv, (ds if need_bias else None)


class PackedSelfAttention(ScaledDotProductAttention):
    """The same op on one packed input qkv (3, ..., N, d), as a fused qkv projection makes it.
    Taking q, k, v as slices of the packed tensor would make backward build three zero-filled
    full-size gradients and add them up (4% of a ViT step); here backward stacks dQ, dK, dV
    into the one packed gradient."""

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
