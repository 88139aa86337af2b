"""Elementwise ops: arithmetic, nonlinearities, dtype/device moves and dropout.

For y = f(a, b) applied elementwise, backward multiplies the upstream gradient g = dL/dy by the
local derivative: dL/da = g * df/da. Inputs may broadcast; the engine sums gradients back to
each input's shape (``tensor.unbroadcast``).
"""
import numpy as np

from .. import backend
from ..kernels import elementwise as fast, reference_enabled
from ..tensor import Function
from .special import INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI, erf


class Add(Function):
    """y = a + b;  dL/da = g, dL/db = g. On NumPy, ``kernels.elementwise.add`` (residual
    connections add large arrays of one shape)."""

    def forward(self, a, b):
        return fast.add(a, b) if isinstance(a, np.ndarray) and not reference_enabled() else a + b

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
    the next layer keeps alive anyway, so no mask array is saved. On NumPy,
    ``kernels.elementwise.relu`` and ``relu_backward``."""

    def forward(self, a):
        self.fast = isinstance(a, np.ndarray) and not reference_enabled()
        self.y = fast.relu(a) if self.fast else self.xp.maximum(a, 0)
        return self.y

    def backward(self, g):
        return fast.relu_backward(g, self.y) if self.fast else g * (self.y > 0)


class LeakyReLU(Function):
    """y = a if a > 0 else s * a;  dL/da = g * (1 if a > 0 else s)."""

    def forward(self, a, negative_slope=0.01):
        self.mask = a > 0
        self.slope = negative_slope
        return self.xp.where(self.mask, a, a * negative_slope)

    def backward(self, g):
        return self.xp.where(self.mask, g, g * self.slope)


def gelu_forward(a, approximate):
    """y = a Phi(a) with Phi the standard normal CDF, exact ('none') or with 'tanh':

        'none':  Phi(a) = (1 + erf(a / sqrt 2)) / 2
        'tanh':  y = a/2 (1 + tanh u),  u = sqrt(2/pi) (a + 0.044715 a^3)

    a: any shape. Returns y (a's shape) and the cache for ``gelu_backward``: (a, Phi(a)) or
    (a, tanh u)."""
    if approximate == "tanh":
        t = backend.array_module(a).tanh(SQRT_2_OVER_PI * (a + 0.044715 * a ** 3))
        return 0.5 * a * (1.0 + t), (a, t)
    cdf = 0.5 * (1.0 + erf(a * INV_SQRT_2))
    return a * cdf, (a, cdf)


def gelu_backward(g, cache, approximate):
    """dL/da = g dy/da:

        'none':  dy/da = Phi(a) + a phi(a),  phi(a) = exp(-a^2 / 2) / sqrt(2 pi)
        'tanh':  dy/da = (1 + tanh u)/2 + a/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 a^2)
    """
    a, aux = cache
    xp = backend.array_module(a)
    if approximate == "tanh":
        du = SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * a * a)
        return g * (0.5 * (1.0 + aux) + 0.5 * a * (1.0 - aux * aux) * du)
    return g * (aux + a * INV_SQRT_2PI * xp.exp(-0.5 * a * a))


class GELU(Function):
    """Gaussian error linear unit, y = a Phi(a): ``gelu_forward`` and ``gelu_backward``
    above, or on NumPy the same formulas evaluated in place and split over threads
    (``kernels.elementwise``)."""

    def forward(self, a, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.fast = isinstance(a, np.ndarray) and not reference_enabled()
        y, self.cache = (fast.gelu_forward if self.fast else gelu_forward)(a, approximate)
        return y

    def backward(self, g):
        return (fast.gelu_backward if self.fast else gelu_backward)(g, self.cache, self.approximate)


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
