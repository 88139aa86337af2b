"""Shape ops: they move or copy elements without arithmetic, so backward routes each
gradient element back to where its value came from."""
import numpy as np

from ..kernels import reference_enabled, shape as fast
from ..tensor import Function, Tensor


class Reshape(Function):
    """y = a viewed with a new shape;  dL/da = g reshaped to a's shape. Where the memory
    order allows no view (a transposed input), NumPy arrays are copied by
    ``kernels.shape.reshape``."""

    def forward(self, a, shape):
        self.shape = a.shape
        self.fast = isinstance(a, np.ndarray) and not reference_enabled()
        return fast.reshape(a, shape) if self.fast else a.reshape(shape)

    def backward(self, g):
        return fast.reshape(g, self.shape) if self.fast else g.reshape(self.shape)


class Permute(Function):
    """y = a with its axes reordered (y.shape[i] = a.shape[axes[i]]);
    dL/da = g permuted by the inverse order."""

    def forward(self, a, axes=None):
        axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(ax % a.ndim for ax in axes)
        self.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return a.transpose(axes)

    def backward(self, g):
        return g.transpose(self.inverse)


class BroadcastTo(Function):
    """y = a broadcast to ``shape``;  dL/da = g summed over the broadcast axes (by the engine)."""

    def forward(self, a, shape):
        return self.xp.broadcast_to(a, shape)

    def backward(self, g):
        return g


def _index_data(index):
    """Tensors inside an index become their arrays (integer or boolean indexing)."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_basic(index):
    """True for indices made of ints, slices, None and Ellipsis: each output element comes
    from a distinct input element, so backward can assign instead of accumulate."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None))) or i is Ellipsis for i in parts)


class GetItem(Function):
    """y = a[index];  dL/da = zeros with g added at the indexed places. Integer-array indices
    may repeat an element, so they accumulate (``add.at``); basic slices assign."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        xp = self.xp
        out = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic(self.index):
            out[self.index] = g
        elif xp is np:
            xp.add.at(out, self.index, g)
        else:
            import cupyx
            cupyx.scatter_add(out, self.index, g)
        return out


class Concatenate(Function):
    """y = [a_1, ..., a_k] joined along ``axis``;  dL/da_i = the slice of g that a_i filled."""

    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.bounds = []
        start = 0
        for a in arrays:
            self.bounds.append((start, start + a.shape[axis]))
            start += a.shape[axis]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        axis = self.axis % g.ndim
        lead = (slice(None),) * axis
        return tuple(g[lead + (slice(lo, hi),)] if need else None
                     for (lo, hi), need in zip(self.bounds, self.needs_input_grad))


class Stack(Function):
    """y = [a_1, ..., a_k] stacked along a new ``axis``;  dL/da_i = g taken at index i."""

    def forward(self, *arrays, axis=0):
        self.axis = axis
        return self.xp.stack(arrays, axis=axis)

    def backward(self, g):
        axis = self.axis % g.ndim
        lead = (slice(None),) * axis
        return tuple(g[lead + (i,)] if need else None for i, need in enumerate(self.needs_input_grad))


class Pad(Function):
    """y = a with ``pad_width`` constant padding (numpy's ((before, after), ...) form);
    dL/da = the interior of g."""

    def forward(self, a, pad_width, value=0.0):
        self.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return self.xp.pad(a, pad_width, mode="constant", constant_values=value)

    def backward(self, g):
        return g[self.inner]
