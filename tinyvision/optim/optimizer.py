"""The optimizer base class: parameter groups, per-parameter state, checkpoints.

An optimizer holds ``param_groups``, a list of dicts: ``{'params': [Tensor, ...], 'lr': ...,
'weight_decay': ..., ...}``. Every group carries the full set of options (the constructor's
defaults, overridden by what the group names), so one model can train its weights with weight
decay and its biases without. ``state`` maps each parameter (by identity) to its own dict of
buffers (momentum, Adam moments) and counters, created on its first update.

Updates work on the raw arrays, ``p.data``, in place: the Parameter objects a model holds stay
the same, no autograd graph is recorded, and no array the size of the model is allocated per
step beyond one temporary per parameter.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor


class _Required:
    """Marks an option without a default (SGD's lr): every group must give it."""

    def __repr__(self):
        return "<required>"


required = _Required()


class Optimizer:
    """Base class of the optimizers. Subclasses implement ``_update(p, grad, state, group)``,
    one parameter's step on arrays; this class does the bookkeeping.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each with a 'params'
            iterable and any options that override ``defaults`` for that group.
        defaults: the options of every group that does not set them.
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts (parameter groups), "
                            "got a single Tensor; pass [tensor] or model.parameters()")
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        groups = list(params)
        if not groups:
            raise ValueError("the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group (a dict with 'params' and options); missing options take the defaults.
        A parameter may belong to one group only."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"the optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"the optimizer can only optimize floating tensors, got dtype {p.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("a parameter appears twice in the optimizer's parameter groups; "
                             "each parameter may belong to one group, once")
        options = {k: v for k, v in group.items() if k != "params"}
        for name, default in self.defaults.items():
            if default is required and name not in options:
                raise ValueError(f"parameter group didn't specify a value of required option {name!r}")
            options.setdefault(name, default)
        self._check_options(options)
        self.param_groups.append(dict(options, params=params))

    def _check_options(self, options):
        """Validate one group's options (subclasses raise ValueError with the offending value)."""

    def zero_grad(self):
        """Forget every parameter's gradient (``.grad = None``): the next backward writes a
        fresh one instead of adding to the old, and step() skips parameters it did not reach."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure``, if given, is called
        first to recompute the loss and gradients; its value is returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p.data, p.grad.data, self.state.setdefault(p, {}), group)
        return loss

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    # ------------------------------------------------------------ checkpoints
    def state_dict(self):
        """The optimizer's state as plain data: ``{'state': {index: {name: host array or
        number}}, 'param_groups': [{options..., 'params': [index, ...]}]}``, parameters being
        numbered in group order. Arrays are copies, so later steps do not change a saved dict."""
        index, state, groups = 0, {}, []
        for group in self.param_groups:
            indices = []
            for p in group["params"]:
                if p in self.state:
                    state[index] = {k: _to_host(v) for k, v in self.state[p].items()}
                indices.append(index)
                index += 1
            groups.append(dict({k: v for k, v in group.items() if k != "params"}, params=indices))
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` saved into an optimizer built over the same parameters
        (same groups, same sizes, same order). State arrays are copied onto each parameter's
        device in its dtype, so that a resumed run continues bit for bit."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the saved optimizer has {len(groups)} parameter groups, this one has "
                             f"{len(self.param_groups)}")
        params = {}
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i} holds {len(saved['params'])} parameters in the saved "
                                 f"optimizer and {len(group['params'])} in this one")
            params.update(zip(saved["params"], group["params"]))
        new_state = {}
        for index, entries in state_dict["state"].items():
            p = params[int(index)]
            new_state[p] = {k: _to_param(v, p) for k, v in entries.items()}
        self.state = new_state
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})


def _to_host(value):
    # np.array copies even a host array: the live buffer keeps changing in place.
    return np.array(backend.to_numpy(value)) if hasattr(value, "shape") else value


def _to_param(value, p):
    """A saved state array as a fresh array on p's device in p's dtype (a copy: in-place updates
    must not write into the caller's state dict); numbers stay numbers."""
    if not hasattr(value, "shape"):
        return value
    return backend.xp_for(p.device).array(backend.to_numpy(value), dtype=p.dtype)
