"""Tensor and the reverse-mode autodiff engine.

A ``Tensor`` wraps one array (NumPy or CuPy, see ``backend``). Each differentiable op is a
``Function`` subclass with a ``forward`` that computes the output array and a ``backward``
that maps the output gradient dL/dy to the input gradients dL/dx, saving what it needs on
``self``. Applying a Function to tensors that require gradients records it as the output's
``_ctx``; ``Tensor.backward`` walks that graph in reverse topological order (iteratively, so a
graph of any depth works) and applies the chain rule

    dL/dx = sum over uses y of x:  (dy/dx)^T dL/dy.

Broadcasting is undone in one place, ``unbroadcast``: an input of shape (3, 1) broadcast to
(5, 3, 4) receives the output gradient summed over the broadcast axes.
"""
import functools

import numpy as np

from . import backend

_grad_enabled = True


class no_grad:
    """Context manager (and decorator) under which ops record no graph: for evaluation and
    for in-place parameter updates."""

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)  # name, docstring and signature of fn, for help() and tracebacks
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled():
    return _grad_enabled


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Function:
    """One differentiable op. Subclasses define

    - ``forward(self, *arrays, **options) -> array``: compute the output; store on ``self``
      whatever backward needs (the saved context, freed after backward);
    - ``backward(self, grad) -> array or tuple of arrays``: one gradient per tensor input,
      ``None`` where ``self.needs_input_grad[i]`` is False.

    ``self.xp`` is the array module of the inputs (numpy or cupy).
    """

    def __init__(self, xp, parents):
        self.xp = xp
        self.parents = parents
        self.needs_input_grad = tuple(p.requires_grad for p in parents)

    @classmethod
    def apply(cls, *inputs, **options):
        """Run the op on Tensors (Python scalars and arrays become constants) and record it."""
        tensors = _as_tensors(inputs, cls.__name__)
        ctx = cls(backend.array_module(tensors[0].data), tensors)
        out = ctx.forward(*[t.data for t in tensors], **options)
        if _grad_enabled and any(ctx.needs_input_grad):
            return Tensor._make(out, ctx)
        return Tensor._make(out, None)

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _as_tensors(inputs, opname):
    """Tensors stay; scalars become 0-d constants in the dtype of the first tensor (so that
    ``x * 0.5`` keeps float32); all tensors must share one device."""
    ref = next((x for x in inputs if isinstance(x, Tensor)), None)
    out = []
    for x in inputs:
        if not isinstance(x, Tensor):
            if ref is not None and isinstance(x, (int, float, bool, np.generic)):
                # a float scalar keeps a floating tensor's dtype; with an integer tensor it is float32
                dtype = ref.dtype if ref.dtype.kind == "f" or not isinstance(x, (float, np.floating)) else np.float32
                x = Tensor._make(backend.xp_for(ref.device).asarray(x, dtype=dtype), None)
            else:
                x = Tensor(x, device=ref.device if ref is not None else None)
        out.append(x)
    devices = {t.device for t in out}
    if len(devices) > 1:
        raise RuntimeError(
            f"{opname}: tensors are on different devices ({' and '.join(sorted(devices))}); "
            "move them to one device with .to('cpu') or .to('cuda')")
    return out


def _topological_order(root):
    """Tensors reachable from ``root`` through recorded ops, inputs before outputs.
    An explicit stack instead of recursion: a chain of 100,000 ops is fine."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            if node._ctx.parents is None:
                raise RuntimeError("backward() through a graph that was already freed; "
                                   "pass retain_graph=True to the first backward()")
            for parent in node._ctx.parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


class Movable:
    """The shorthands of ``to(device, dtype)``, shared by Tensor and nn.Module."""
    __slots__ = ()      # Tensor keeps its slots

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)


class Tensor(Movable):
    """An n-dimensional array that can record the ops applied to it and differentiate them.

    Args:
        data: array-like (list, scalar, NumPy or CuPy array, Tensor).
        dtype: NumPy dtype. Floating input becomes float32 unless a dtype is given; integer and
            boolean input keeps its dtype (labels, masks).
        device: 'cpu' or 'cuda'; default: the input array's device, else the default device.
        requires_grad: record ops on this tensor so that ``backward`` fills ``.grad``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retain_grad", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, Tensor):
            data, dtype = data.data, dtype or data.dtype
        if device is None:
            device = backend.device_of(data) if hasattr(data, "shape") else backend.get_default_device()
        device = backend.check_device(device)
        data = backend.to_device(data, device) if hasattr(data, "shape") else data
        xp = backend.xp_for(device)
        arr = xp.asarray(data, dtype=dtype)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # float32 unless float64 is asked for
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {arr.dtype}")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._retain_grad = False

    @classmethod
    def _make(cls, array, ctx):
        """Wrap an op's output array without copying or converting it."""
        t = object.__new__(cls)
        t.data, t.grad, t._ctx, t._retain_grad = array, None, ctx, False
        t.requires_grad = ctx is not None
        return t

    # ------------------------------------------------------------ properties
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: int(self.data.size))
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=50,
                               prefix="tensor(")
        extra = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        extra += "" if self.device == "cpu" else f", device='{self.device}'"
        if self._ctx is not None:
            extra += f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ------------------------------------------------------------ conversion
    def numpy(self):
        """The values as a host NumPy array. On the CPU it shares memory with the tensor, as in
        PyTorch (later in-place writes to the tensor show in it; ``.copy()`` to keep a snapshot);
        for CUDA tensors it is a copy."""
        return backend.to_numpy(self.data)

    def item(self):
        """The single value as a Python number (synchronises with the GPU)."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None):
        """A copy on ``device`` and/or in ``dtype``; ``self`` when nothing changes. Differentiable."""
        from .ops.elementwise import Cast, ToDevice
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = ToDevice.apply(out, device=backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = Cast.apply(out, dtype=np.dtype(dtype))
        return out

    def astype(self, dtype):
        return self.to(dtype=dtype)

    def detach(self):
        """The same array, cut from the graph (no copy)."""
        return Tensor._make(self.data, None)

    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain_grad = True
        return self

    # ------------------------------------------------------------ autodiff
    def backward(self, grad=None, retain_graph=False):
        """Accumulate dself/dleaf into ``leaf.grad`` for every leaf that requires gradients.

        Args:
            grad: dL/dself, same shape as self; may be omitted only for a one-element tensor.
            retain_graph: keep the saved arrays so that backward can run through the graph again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input of the computation had requires_grad=True")
        xp = backend.array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient argument needs a scalar output, got shape "
                    f"{self.shape}; reduce it first (e.g. loss.sum() or loss.mean()) or pass "
                    "grad=dL/dout of the same shape")
            g = xp.ones_like(self.data)
        else:
            g = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if g.shape != self.data.shape:
                raise ValueError(f"backward(): grad has shape {g.shape}, expected {self.shape}")
        grads = {id(self): g}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            ctx = node._ctx
            if ctx is None or node._retain_grad:
                node.grad = Tensor._make(g, None) if node.grad is None else Tensor._make(node.grad.data + g, None)
            if ctx is None:
                continue
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg in zip(ctx.parents, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pg = unbroadcast(pg, parent.data.shape)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:
                # Free the saved arrays and the edges: the graph is single-use by default.
                ctx.__dict__.clear()
                ctx.parents = None
        return None

    # ------------------------------------------------------------ operators
    def __add__(self, other): return ops().add(self, other)
    def __radd__(self, other): return ops().add(other, self)
    def __sub__(self, other): return ops().sub(self, other)
    def __rsub__(self, other): return ops().sub(other, self)
    def __mul__(self, other): return ops().mul(self, other)
    def __rmul__(self, other): return ops().mul(other, self)
    def __truediv__(self, other): return ops().div(self, other)
    def __rtruediv__(self, other): return ops().div(other, self)
    def __pow__(self, other): return ops().pow(self, other)
    def __rpow__(self, other): return ops().pow(other, self)
    def __neg__(self): return ops().neg(self)
    def __matmul__(self, other): return ops().matmul(self, other)
    def __rmatmul__(self, other): return ops().matmul(other, self)
    def __getitem__(self, index): return ops().getitem(self, index)
    def __abs__(self): return ops().abs(self)

    # comparisons give boolean tensors without a graph
    def _compare(self, other, fn):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(fn(self.data, other), None)

    def __lt__(self, o): return self._compare(o, lambda a, b: a < b)
    def __le__(self, o): return self._compare(o, lambda a, b: a <= b)
    def __gt__(self, o): return self._compare(o, lambda a, b: a > b)
    def __ge__(self, o): return self._compare(o, lambda a, b: a >= b)
    def eq(self, o): return self._compare(o, lambda a, b: a == b)
    def ne(self, o): return self._compare(o, lambda a, b: a != b)

    __hash__ = object.__hash__

    def argmax(self, axis=None, keepdims=False):
        return Tensor._make(self.data.argmax(axis=axis, keepdims=keepdims), None)

    def argmin(self, axis=None, keepdims=False):
        return Tensor._make(self.data.argmin(axis=axis, keepdims=keepdims), None)


_ops_module = None


def ops():
    """The ops package (imported lazily: ops import this module)."""
    global _ops_module
    if _ops_module is None:
        from . import ops as module
        _ops_module = module
    return _ops_module


def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a Tensor (see ``Tensor``): ``tv.tensor([[1., 2.]], requires_grad=True)``."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _factory(fill):
    def make(*shape, dtype=np.float32, device=None, requires_grad=False):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        device = backend.check_device(device or backend.get_default_device())
        return Tensor(fill(shape, dtype, device), device=device, dtype=dtype, requires_grad=requires_grad)
    return make


zeros = _factory(lambda s, d, dev: backend.xp_for(dev).zeros(s, dtype=d))
ones = _factory(lambda s, d, dev: backend.xp_for(dev).ones(s, dtype=d))
randn = _factory(lambda s, d, dev: backend.randn(s, d, dev))
rand = _factory(lambda s, d, dev: backend.rand(s, d, dev))
zeros.__doc__ = "Tensor of zeros: ``tv.zeros(2, 3)`` or ``tv.zeros((2, 3), dtype=np.float64)``."
ones.__doc__ = "Tensor of ones, as ``zeros``."
randn.__doc__ = "Standard normal samples from the seeded generator (``tv.manual_seed``)."
rand.__doc__ = "Uniform [0, 1) samples from the seeded generator."


def arange(*args, dtype=None, device=None):
    device = backend.check_device(device or backend.get_default_device())
    return Tensor(backend.xp_for(device).arange(*args, dtype=dtype), device=device,
                  dtype=dtype or (np.float32 if any(isinstance(a, float) for a in args) else None))
