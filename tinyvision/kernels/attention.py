"""Fast CPU kernel of scaled dot-product attention (``ops.attention``): the same functions, the
same signatures.

Forward builds the logits S in one (..., Nq, Nk) buffer and turns it into A in place, row
blocks split over threads; the batched products are split over the stack (``parallel.matmul``).
Backward takes softmax's row sums over the output's dv features instead of the Nk keys
(FlashAttention's identity), so no (Nq, Nk) product is formed for them:

    rowsum(dA * A)_i = sum_j (G V^T)_ij A_ij = sum_c G_ic (A V)_ic = rowsum(G * O)_i

(with dropout, A * M in place of A and dA the gradient of the dropped weights).
"""
import numpy as np

from .. import parallel


def _softmax_inplace(s):
    """s <- softmax(s) along the last axis, in place: exp(S - max) / sum."""
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)


def attention_forward(q, k, v, bias, mask, scale, drop):
    """``ops.attention.attention_forward``, in one logits buffer."""
    s = parallel.matmul(q, k.swapaxes(-1, -2))      # the one (..., Nq, Nk) buffer
    s *= scale                                      # scale S, not Q: no copy of Q is made
    if bias is not None:
        if np.broadcast_shapes(s.shape, bias.shape) == s.shape:
            s += bias                               # in place when the bias broadcasts into S
        else:
            s = s + bias                            # a bias with more leading axes than S
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    parallel.for_rows(lambda r: _softmax_inplace(s[r]), len(s), s.size)
    out = parallel.matmul(s if drop is None else s * drop, v)
    return out, (q, k, v, s, scale, drop, out)


def attention_backward(g, cache, needs):
    """``ops.attention.attention_backward`` with the row sums taken from G and O."""
    q, k, v, a, scale, drop, out = cache
    need_q, need_k, need_v, need_bias = needs
    dv = parallel.matmul((a if drop is None else a * drop).swapaxes(-1, -2), g) if need_v else None
    if not (need_q or need_k or need_bias):
        return None, None, dv, None
    ds = parallel.matmul(g, v.swapaxes(-1, -2))     # dA (of the dropped weights)
    if drop is not None:
        ds *= drop                                  # dA of the softmax output

    def softmax_backward(r):                        # dS = A (dA - rowsum(G O)), in place
        ds[r] -= (g[r] * out[r]).sum(axis=-1, keepdims=True)
        ds[r] *= a[r]
    aligned = a.shape == ds.shape == g.shape[:-1] + ds.shape[-1:]  # the same rows in all
    parallel.for_rows(softmax_backward, len(ds), ds.size if aligned else 0)
    # Scale the fresh (N, d) products in place rather than dS (which is also dbias).
    dq = dk = None
    if need_q:
        dq = parallel.matmul(ds, k)
        dq *= scale
    if need_k:
        dk = parallel.matmul(ds.swapaxes(-1, -2), q)
        dk *= scale
    return dq, dk, dv, (ds if need_bias else None)
