"""Parameter and Module: the containers that hold a network's weights and structure.

A ``Module`` owns three ordered tables, filled by plain attribute assignment:

- ``_parameters``: ``Parameter`` tensors, the learnable weights (``requires_grad=True``);
- ``_buffers``: state that is not learned by gradient descent but belongs to the model
  (batch norm's running statistics), held as Tensors without gradients;
- ``_modules``: child modules, which gives every parameter a dotted name such as
  ``layer1.0.conv1.weight`` (PyTorch's naming, so state dicts read the same).

Moving a module (``to``) replaces the arrays *inside* the existing Parameter objects, so an
optimizer built before the move keeps pointing at the live weights.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Movable, Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight.

    It is an ordinary leaf Tensor with ``requires_grad=True`` (pass False to freeze it);
    the subclass only marks it for registration. The array is used as given (no copy), and a
    floating array keeps its dtype (float64 stays float64, for gradient checks).
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        dtype = data.dtype if hasattr(data, "dtype") else None
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def new_parameter(shape, device=None, dtype=None):
    """An uninitialised Parameter of ``shape`` (float32 unless ``dtype``) on ``device`` (the
    default device unless given); layers fill it with an ``init`` function."""
    device = backend.check_device(device or backend.get_default_device())
    return Parameter(backend.xp_for(device).empty(shape, dtype=dtype or np.float32))


def _as_buffer(value):
    """Buffers are Tensors without gradients; arrays and Tensors keep their dtype."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value
    if not hasattr(value, "dtype"):
        value = np.asarray(value)
    return Tensor(value, dtype=value.dtype)


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module(Movable):
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, assign Parameters, buffers (through
    ``register_buffer``) and child Modules as attributes, and define ``forward``.
    Calling the module runs ``forward``.
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these tables to exist already.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def _tables(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called; "
                                 f"call super().__init__() first in {type(self).__name__}.__init__")
        return self._parameters, self._buffers, self._modules

    def __setattr__(self, name, value):
        params, buffers, modules = self._tables(name)
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__}; assign a Parameter or None")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} of "
                                f"{type(self).__name__}; assign a Module or None")
            modules[name] = None
        elif name in buffers:
            buffers[name] = _as_buffer(value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drop ``name`` from every table and the instance dict (before re-registering it)."""
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters, buffers and children live in tables.
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if any(name in t for t in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._tables(name)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, value, persistent=True):
        """Register a non-learned state tensor (array, Tensor or None).

        Persistent buffers are part of ``state_dict``; non-persistent ones (caches that can
        be recomputed) only move with ``to``.
        """
        if "." in name or not name:
            raise KeyError(f"buffer name must be non-empty and contain no '.', got {name!r}")
        self._tables(name)
        self._forget(name)
        self._buffers[name] = _as_buffer(value)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._tables(name)
        self._forget(name)
        self._modules[name] = module

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix="", memo=None, remove_duplicate=True):
        """(name, module) for this module and every descendant; a module reachable by two
        paths appears once, unless remove_duplicate=False (then once per path)."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(prefix + ("." if prefix else "") + name, memo, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, t in getattr(module, table).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs; a parameter shared by two layers appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only=False):
        """Number of scalar weights (shared parameters counted once)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------ modes and grads
    def train(self, mode=True):
        """Set training mode (dropout active, batch norm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self):
        """Drop every parameter's gradient (None: the next backward writes fresh arrays)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag=True):
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, children first, then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ device and dtype
    def to(self, device=None, dtype=None):
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``,
        in place: the Parameter objects stay the same, only their arrays are replaced.

        ``module.to('cuda')``, ``module.to(dtype=np.float64)``, ``module.to(np.float64)``.
        """
        if device is not None and not isinstance(device, str):
            device, dtype = None, device  # to(np.float64)
        device = backend.check_device(device) if device is not None else None
        dtype = np.dtype(dtype) if dtype is not None else None

        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            return array

        tensors = {}
        for m in self.modules():
            for t in list(m._parameters.values()) + list(m._buffers.values()):
                if t is not None:
                    tensors[id(t)] = t
        for t in tensors.values():
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad.data = convert(t.grad.data)
        return self

    # ------------------------------------------------------------ state dict
    def _state_tensors(self):
        """Name -> Tensor of every parameter and persistent buffer (shared ones under each
        name, as PyTorch does), in registration order."""
        out = OrderedDict()
        for prefix, m in self.named_modules(remove_duplicate=False):
            dot = prefix + "." if prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[dot + name] = p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[dot + name] = b
        return out

    def state_dict(self):
        """OrderedDict of dotted name -> host NumPy copy of each parameter and persistent
        buffer (e.g. ``layer1.0.conv1.weight``, ``bn1.running_mean``, ``bn1.num_batches_tracked``)."""
        return OrderedDict((name, np.array(backend.to_numpy(t.data), copy=True))
                           for name, t in self._state_tensors().items())

    def load_state_dict(self, state_dict, strict=True):
        """Copy ``state_dict``'s arrays (NumPy, CuPy or Tensors) into this module's existing
        arrays, keeping their device and dtype.

        Every problem is collected before anything is copied, and reported together: keys
        the module expects but ``state_dict`` lacks (missing), keys it has that the module
        does not (unexpected), and shape mismatches (always an error). With strict=False,
        missing and unexpected keys are allowed and returned as ``(missing, unexpected)``.
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for key, t in own.items():
            if key in state_dict:
                value = state_dict[key]
                shape = tuple(np.shape(value.data if isinstance(value, Tensor) else value))
                if shape != t.shape:
                    mismatched.append(f"  {key}: checkpoint has shape {shape}, the model has {t.shape}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches:\n" + "\n".join(mismatched))
        if problems:
            raise RuntimeError(f"error loading state_dict into {type(self).__name__}:\n" + "\n".join(problems))
        for key, t in own.items():
            if key in state_dict:
                value = state_dict[key]
                value = value.data if isinstance(value, Tensor) else value
                xp = backend.array_module(t.data)
                t.data[...] = xp.asarray(backend.to_device(value, t.device), dtype=t.dtype)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The text inside this module's parentheses in ``repr`` (its configuration)."""
        return ""

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            child_lines = repr(child).split("\n")
            lines.append(f"({name}): " + "\n  ".join(child_lines))
        if not self._modules:
            return f"{type(self).__name__}({', '.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
