"""Matrix products: ``matmul`` with numpy's rules and the fused ``linear`` layer op.

Both compute their products with ``self.matmul``: ``a @ b`` itself, or for NumPy arrays the fast
kernel ``kernels.linalg.matmul`` (the same product, split over threads when large).
"""
import operator

import numpy as np

from ..kernels import linalg as fast, reference_enabled
from ..tensor import Function


def _matmul_for(a):
    """The product function for arrays like ``a``: the fast kernel or ``a @ b``."""
    return fast.matmul if isinstance(a, np.ndarray) and not reference_enabled() else operator.matmul


class MatMul(Function):
    """y = a @ b with numpy's rules: 1-D operands are promoted to a row (a) or a column (b)
    and the added axis removed again; leading axes broadcast (batched products).

        dL/da = g @ b^T,   dL/db = a^T @ g   (transposes of the last two axes)

    A stack of inputs times one matrix, (..., n, k) @ (k, m), runs as one 2-D GEMM on the
    flattened stack in both directions; numpy would otherwise loop over the stack, and dL/db
    would first materialise one (k, m) product per stack element before summing them.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: operands must have at least one dimension, got a scalar")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match: the last axis of "
                f"the first ({a.shape[-1]}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} "
                f"axis of the second ({b.shape[-2 if b.ndim > 1 else 0]})")
        self.a_vec, self.b_vec = a.ndim == 1, b.ndim == 1
        self.a = a[None, :] if self.a_vec else a
        self.b = b[:, None] if self.b_vec else b
        self.flat = self.b.ndim == 2 and self.a.ndim > 2
        self.matmul = _matmul_for(a)
        if self.flat:
            y = self.matmul(self.a.reshape(-1, self.a.shape[-1]), self.b).reshape(self.a.shape[:-1] + (self.b.shape[-1],))
        else:
            y = self.matmul(self.a, self.b)
        if self.b_vec:
            y = y[..., 0]
        if self.a_vec:
            y = y[..., 0, :] if not self.b_vec else y[..., 0]
        return y

    def backward(self, g):
        a, b = self.a, self.b
        if self.b_vec:
            g = g[..., None]
        if self.a_vec:
            g = g[..., None, :]
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = self.matmul(g, b.swapaxes(-1, -2))
            ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],)) if self.a_vec else ga
        if self.needs_input_grad[1]:
            if self.flat:
                gb = self.matmul(a.reshape(-1, a.shape[-1]).T, g.reshape(-1, g.shape[-1]))
            else:
                gb = self.matmul(a.swapaxes(-1, -2), g)
            gb = gb[..., 0] if self.b_vec else gb
        return ga, gb


class Linear(Function):
    """y = x W^T + b for x of shape (..., in), W (out, in), b (out,) -> y (..., out).

    Any leading axes are flattened into one GEMM, (M, in) @ (in, out) with M = prod(...):
        dL/dx = g W,   dL/dW = g^T x,   dL/db = sum of g over the M rows.
    """

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features in its last axis "
                             f"(shape {tuple(x.shape)}), the weight expects {weight.shape[1]}")
        self.x_shape = x.shape
        self.x2 = x.reshape(-1, x.shape[-1])
        self.weight = weight
        self.matmul = _matmul_for(x)
        y = self.matmul(self.x2, weight.T)
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = self.matmul(g2, self.weight).reshape(self.x_shape) if self.needs_input_grad[0] else None
        gw = self.matmul(g2.T, self.x2) if self.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if len(self.needs_input_grad) > 2 and self.needs_input_grad[2] else None
        return gx, gw, gb
