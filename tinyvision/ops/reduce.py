"""Reductions and the softmax family.

A reduction y = r(a) over ``axis`` hands each input element the upstream gradient of the output
it fed: backward re-inserts the reduced axes (keepdims) and broadcasts g back to a's shape.
"""
from .. import backend
from ..tensor import Function


def _axes(axis, ndim):
    """Normalise ``axis`` (None, int or tuple, negatives allowed) to a sorted tuple."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(ax % ndim for ax in axis))


def _expand(g, axes, keepdims):
    """Give g back the reduced axes as size-1 dimensions."""
    if keepdims:
        return g
    for ax in axes:
        g = g.reshape(g.shape[:ax] + (1,) + g.shape[ax:])
    return g


class Sum(Function):
    """y = sum of a over axis;  dL/da = g broadcast over the summed axes."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return self.xp.broadcast_to(_expand(g, self.axes, self.keepdims), self.shape)


class Mean(Function):
    """y = (1/n) sum of a over axis (n elements reduced);  dL/da = g / n broadcast."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        self.n = 1
        for ax in self.axes:
            self.n *= a.shape[ax]
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return self.xp.broadcast_to(_expand(g, self.axes, self.keepdims) * (1.0 / self.n), self.shape)


class Max(Function):
    """y = max of a over axis;  dL/da = g at the maximal elements (shared equally on ties)."""

    def forward(self, a, axis=None, keepdims=False, _fn="max"):
        self.axes, self.keepdims = _axes(axis, a.ndim), keepdims
        y = getattr(a, _fn)(axis=self.axes, keepdims=True)
        self.mask = a == y
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in self.axes])

    def backward(self, g):
        mask = self.mask.astype(g.dtype)
        count = mask.sum(axis=self.axes, keepdims=True)
        return mask * (_expand(g, self.axes, self.keepdims) / count)


class Min(Max):
    """y = min of a over axis;  dL/da = g at the minimal elements (shared equally on ties)."""

    def forward(self, a, axis=None, keepdims=False):
        return super().forward(a, axis, keepdims, _fn="min")


class Var(Function):
    """y = sum (a - mean)^2 / (n - ddof) over axis;  dL/da = g * 2 (a - mean) / (n - ddof)."""

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        self.axes, self.keepdims = _axes(axis, a.ndim), keepdims
        n = 1
        for ax in self.axes:
            n *= a.shape[ax]
        self.centered = a - a.mean(axis=self.axes, keepdims=True)
        self.scale = 2.0 / (n - ddof)
        return (self.centered * self.centered).sum(axis=self.axes, keepdims=keepdims) * (1.0 / (n - ddof))

    def backward(self, g):
        return _expand(g, self.axes, self.keepdims) * self.scale * self.centered


class LogSumExp(Function):
    """y = log sum_i exp(a_i) = m + log sum_i exp(a_i - m) with m = max a (no overflow);
    dL/da = g * softmax(a)."""

    def forward(self, a, axis=-1, keepdims=False):
        xp = self.xp
        self.axes, self.keepdims = _axes(axis, a.ndim), keepdims
        m = a.max(axis=self.axes, keepdims=True)
        e = xp.exp(a - m)
        s = e.sum(axis=self.axes, keepdims=True)
        self.p = e / s
        y = m + xp.log(s)
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in self.axes])

    def backward(self, g):
        return _expand(g, self.axes, self.keepdims) * self.p


def softmax(a, axis=-1):
    """exp(a - max) / sum along ``axis``, on an array (the maximum subtracted against overflow)."""
    e = backend.array_module(a).exp(a - a.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_backward(g, y, axis=-1):
    """dL/da = y * (g - sum_j g_j y_j) for y = softmax(a) along ``axis`` and g = dL/dy."""
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """y_i = exp(a_i - m) / sum_j exp(a_j - m) along axis (m = max a, for stability).

    Jacobian dy_i/da_j = y_i (delta_ij - y_j), so the vector-Jacobian product is
        dL/da = y * (g - sum_j g_j y_j),
    one fused expression instead of an n x n matrix.
    """

    def forward(self, a, axis=-1):
        self.axis = axis
        self.y = softmax(a, axis)
        return self.y

    def backward(self, g):
        return softmax_backward(g, self.y, self.axis)


class LogSoftmax(Function):
    """y = a - logsumexp(a) along axis;  dL/da = g - softmax(a) * sum_j g_j."""

    def forward(self, a, axis=-1):
        xp = self.xp
        self.axis = axis
        shifted = a - a.max(axis=axis, keepdims=True)
        e = xp.exp(shifted)
        s = e.sum(axis=axis, keepdims=True)
        self.p = e / s
        return shifted - xp.log(s)

    def backward(self, g):
        return g - self.p * g.sum(axis=self.axis, keepdims=True)
