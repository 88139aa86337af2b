"""Elementwise ops: arithmetic, nonlinearities, dtype/device moves and dropout.

For y = f(a, b) applied elementwise, backward multiplies the upstream gradient g = dL/dy by the
local derivative: dL/da = g * df/da. Inputs may broadcast; the engine sums gradients back to
each input's shape (``tensor.unbroadcast``).
"""
import math

import numpy as np

from .. import backend, parallel
from ..tensor import Function


class Add(Function):
    """y = a + b;  dL/da = g, dL/db = g. Equal shapes (a residual connection) are added in
    row blocks over threads, in a's memory order (``parallel.add``)."""

    def forward(self, a, b):
        return parallel.add(a, b)

    def backward(self, g):
        return g, g


class Sub(Function):
    """y = a - b;  dL/da = g, dL/db = -g."""

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;  dL/da = g * b, dL/db = g * a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b;  dL/da = g / b, dL/db = -g * a / b^2 = -g * y / b."""

    def forward(self, a, b):
        self.b = b
        self.y = a / b
        return self.y

    def backward(self, g):
        ga = g / self.b
        return (ga if self.needs_input_grad[0] else None,
                -ga * self.y if self.needs_input_grad[1] else None)


class Neg(Function):
    """y = -a;  dL/da = -g."""

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """y = a^b;  dL/da = g * b * a^(b-1), dL/db = g * y * ln(a) (a > 0 where it is needed)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, g):
        ga = g * self.b * self.a ** (self.b - 1) if self.needs_input_grad[0] else None
        gb = g * self.y * self.xp.log(self.a) if self.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    """y = e^a;  dL/da = g * y."""

    def forward(self, a):
        self.y = self.xp.exp(a)
        return self.y

    def backward(self, g):
        return g * self.y


class Log(Function):
    """y = ln a;  dL/da = g / a."""

    def forward(self, a):
        self.a = a
        return self.xp.log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    """y = sqrt(a);  dL/da = g / (2 y)."""

    def forward(self, a):
        self.y = self.xp.sqrt(a)
        return self.y

    def backward(self, g):
        return g / (2.0 * self.y)


class Abs(Function):
    """y = |a|;  dL/da = g * sign(a) (0 at a = 0)."""

    def forward(self, a):
        self.a = a
        return self.xp.abs(a)

    def backward(self, g):
        return g * self.xp.sign(self.a)


class Maximum(Function):
    """y = max(a, b) elementwise; the gradient goes to the larger input (to a on ties)."""

    def forward(self, a, b):
        self.mask = a >= b
        return self.xp.maximum(a, b)

    def backward(self, g):
        zero = g.dtype.type(0)
        return (self.xp.where(self.mask, g, zero) if self.needs_input_grad[0] else None,
                self.xp.where(self.mask, zero, g) if self.needs_input_grad[1] else None)


class Minimum(Function):
    """y = min(a, b) elementwise; the gradient goes to the smaller input (to a on ties)."""

    def forward(self, a, b):
        self.mask = a <= b
        return self.xp.minimum(a, b)

    backward = Maximum.backward


class Clip(Function):
    """y = min(max(a, lo), hi);  dL/da = g where lo <= a <= hi, else 0."""

    def forward(self, a, lo=None, hi=None):
        self.mask = self.xp.ones(a.shape, dtype=bool)
        if lo is not None:
            self.mask &= a >= lo
        if hi is not None:
            self.mask &= a <= hi
        return self.xp.clip(a, lo, hi)

    def backward(self, g):
        return g * self.mask


class Where(Function):
    """y = a where cond else b (cond a boolean array, no gradient);
    dL/da = g where cond, dL/db = g elsewhere."""

    def forward(self, a, b, cond):
        # asarray moves a host (NumPy) mask to the inputs' device; cupy.where takes no NumPy
        # arguments.
        self.cond = self.xp.asarray(cond, dtype=bool)
        return self.xp.where(self.cond, a, b)

    def backward(self, g):
        zero = g.dtype.type(0)
        return (self.xp.where(self.cond, g, zero) if self.needs_input_grad[0] else None,
                self.xp.where(self.cond, zero, g) if self.needs_input_grad[1] else None)


class ReLU(Function):
    """y = max(a, 0);  dL/da = g * [y > 0]. Backward reads the mask off the output, which
    the next layer keeps alive anyway, so no mask array is saved."""

    def forward(self, a):
        xp = self.xp
        self.y = xp.empty_like(a)
        parallel.elementwise(lambda y, a: xp.maximum(a, 0, out=y), self.y, a)
        return self.y

    def backward(self, g):
        # dL/da takes the memory order of a (through y), not of g: a gradient broadcast back
        # from a global average pool is plain NCHW, while the batch norm and convolution
        # before this ReLU work on channel-major memory and would each copy it over.
        xp = self.xp
        gx = xp.empty_like(self.y)
        parallel.elementwise(lambda gx, g, y: xp.multiply(g, y > 0, out=gx), gx, g, self.y)
        return gx


class LeakyReLU(Function):
    """y = a if a > 0 else s * a;  dL/da = g * (1 if a > 0 else s)."""

    def forward(self, a, negative_slope=0.01):
        self.mask = a > 0
        self.slope = negative_slope
        return self.xp.where(self.mask, a, a * negative_slope)

    def backward(self, g):
        return self.xp.where(self.mask, g, g * self.slope)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def erf(x):
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    NumPy has no erf, so: CuPy uses its own kernel; a NumPy float64 array uses the exact
    ``math.erf`` per element (gradient checks need full precision); float32 uses the
    Abramowitz-Stegun 7.1.26 rational approximation, whose absolute error 1.5e-7 is at
    float32's resolution:
        erf(x) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) e^(-x^2),  t = 1/(1 + p x),  x >= 0.
    """
    xp = backend.array_module(x)
    if xp is not np:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    if x.dtype == np.float64:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    # Evaluated in place on two buffers: this runs on every MLP activation of a ViT, and
    # a dozen fresh temporaries cost more than the arithmetic.
    t = np.abs(x)
    e = np.multiply(t, t)
    np.negative(e, out=e)
    np.exp(e, out=e)                                   # exp(-x^2)
    t *= 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)                            # t = 1 / (1 + p|x|)
    poly = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    poly *= e
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


class GELU(Function):
    """Gaussian error linear unit, y = a * Phi(a) with Phi the standard normal CDF.

    'none' (exact):  Phi(a) = (1 + erf(a / sqrt 2)) / 2,  dy/da = Phi(a) + a * phi(a),
                     phi(a) = exp(-a^2 / 2) / sqrt(2 pi).
    'tanh':          y = a/2 * (1 + tanh(u)),  u = sqrt(2/pi) (a + 0.044715 a^3),
                     dy/da = (1 + tanh u)/2 + a/2 * (1 - tanh^2 u) * sqrt(2/pi) (1 + 3*0.044715 a^2).

    Both run in place on one or two buffers, in row blocks over threads: GELU runs on the
    widest activations of a ViT, where temporaries cost more than the arithmetic.
    """

    def forward(self, a, approximate="none"):
        xp = self.xp
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.a, self.approximate = a, approximate
        y, self.aux = xp.empty_like(a), xp.empty_like(a)  # aux: tanh(u), or Phi(a)
        parallel.elementwise(self._forward, y, self.aux, a)
        return y

    def _forward(self, y, aux, a):
        xp = self.xp
        if self.approximate == "tanh":
            xp.multiply(a, a, out=aux)
            aux *= 0.044715 * _SQRT_2_OVER_PI
            aux += _SQRT_2_OVER_PI
            aux *= a                                    # u = sqrt(2/pi) (a + 0.044715 a^3)
            xp.tanh(aux, out=aux)
            xp.add(aux, 1.0, out=y)
            y *= a
            y *= 0.5
        else:
            aux[...] = erf(a * _INV_SQRT_2)
            aux += 1.0
            aux *= 0.5                                  # Phi(a)
            xp.multiply(a, aux, out=y)

    def backward(self, g):
        gx = self.xp.empty_like(g)
        parallel.elementwise(self._backward, gx, g, self.aux, self.a)
        return gx

    def _backward(self, d, g, aux, a):
        xp = self.xp
        if self.approximate == "tanh":
            th = aux
            xp.multiply(a, a, out=d)
            d *= 3 * 0.044715 * _SQRT_2_OVER_PI
            d += _SQRT_2_OVER_PI                        # du/da
            sech2 = th * th
            xp.subtract(1.0, sech2, out=sech2)         # 1 - tanh^2 u
            d *= sech2
            d *= a
            d += th
            d += 1.0
            d *= 0.5                                    # dy/da
        else:
            xp.multiply(a, a, out=d)
            d *= -0.5
            xp.exp(d, out=d)
            d *= _INV_SQRT_2PI
            d *= a
            d += aux                                    # Phi(a) + a phi(a)
        d *= g


class Sigmoid(Function):
    """y = 1 / (1 + e^-a);  dL/da = g * y (1 - y). Computed as (1 + tanh(a/2))/2, which
    never overflows."""

    def forward(self, a):
        self.y = 0.5 * (1.0 + self.xp.tanh(0.5 * a))
        return self.y

    def backward(self, g):
        return g * self.y * (1.0 - self.y)


class Tanh(Function):
    """y = tanh a;  dL/da = g (1 - y^2)."""

    def forward(self, a):
        self.y = self.xp.tanh(a)
        return self.y

    def backward(self, g):
        return g * (1.0 - self.y * self.y)


class Cast(Function):
    """y = a in another dtype; the gradient is cast back to a's dtype."""

    def forward(self, a, dtype):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.src)


class ToDevice(Function):
    """y = a copied to another device; the gradient is copied back."""

    def forward(self, a, device):
        self.src = backend.device_of(a)
        return backend.to_device(a, device)

    def backward(self, g):
        return backend.to_device(g, self.src)


class Dropout(Function):
    """Inverted dropout: y = a * m / (1 - p), m ~ Bernoulli(1 - p) per element, so that
    E[y] = a and evaluation needs no rescaling;  dL/da = g * m / (1 - p)."""

    def forward(self, a, p=0.5):
        keep = backend.rand(a.shape, dtype=a.dtype if a.dtype.kind == "f" else np.float32,
                            device=backend.device_of(a)) >= p
        self.scale = keep.astype(a.dtype) * (1.0 / (1.0 - p))
        return a * self.scale

    def backward(self, g):
        return g * self.scale
