"""``tv.summary(model, input_shape)``: the layer table people know from torchinfo.

One forward pass on a random input, in evaluation mode and without recording gradients,
notes for every module call its output shape, its parameters and the multiply-adds it
performs. Multiply-adds (MACs) are counted where the arithmetic is, for the whole input batch:

    Conv2d           N Ho Wo C_out (C_in / groups) KH KW
    ConvTranspose2d  N H W C_in (C_out / groups) KH KW
    Linear           (number of vectors) in_features out_features     (per token for (B, N, D))
    MultiheadSelfAttention 2 B heads N^2 d = 2 B N^2 D   (Q K^T and A V; its qkv and proj are Linears)

Normalisation, activations, pooling and additions are not counted (they are O(activations),
not O(activations x fan-in)). ResNet-20 on one 32x32 image: 40.55M MACs (tools that also
count batch norm and ReLU report about 40.8M).
"""
import numpy as np

from .. import backend, nn
from ..tensor import Tensor, no_grad
from ..nn import MultiheadSelfAttention


def _macs(module, args, out):
    """Multiply-adds of one call of ``module`` itself (not its children)."""
    if isinstance(module, nn.Conv2d):
        KH, KW = module.kernel_size
        return out.size * (module.in_channels // module.groups) * KH * KW
    if isinstance(module, nn.ConvTranspose2d):
        KH, KW = module.kernel_size
        return args[0].size * (module.out_channels // module.groups) * KH * KW
    if isinstance(module, nn.Linear):
        return out.size * module.in_features
    if isinstance(module, MultiheadSelfAttention):
        B, N, D = args[0].shape
        return 2 * B * N * N * D
    return 0


def _shape(out):
    if isinstance(out, Tensor):
        return list(out.shape)
    if isinstance(out, (tuple, list)):
        return [_shape(o) for o in out]
    return "-"


class ModelSummary:
    """The result of ``summary``: ``rows`` (dicts with name, type, depth, output_shape,
    params (None for a repeated call of the same module), macs including children),
    ``total_params``, ``trainable_params``, ``total_macs`` (for the whole input batch) and
    ``input_shape``. ``str()`` gives the table, showing rows down to ``depth``."""

    def __init__(self, rows, total_params, trainable_params, total_macs, input_shape, depth):
        self.rows, self.total_params, self.trainable_params = rows, total_params, trainable_params
        self.total_macs, self.input_shape, self.depth = total_macs, tuple(input_shape), depth

    def __str__(self):
        shown = [r for r in self.rows if self.depth is None or r["depth"] <= self.depth]
        cells = [(("  " * (r["depth"] - 1)) + f"{r['name']} ({r['type']})", str(r["output_shape"]),
                  "--" if r["params"] is None else f"{r['params']:,}", f"{r['macs']:,}") for r in shown]
        head = ("Layer (type)", "Output shape", "Param #", "Mult-adds")
        widths = [max([len(head[i])] + [len(c[i]) for c in cells]) for i in range(4)]

        def line(c):
            return f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:>{widths[2]}}  {c[3]:>{widths[3]}}"

        rule = "=" * len(line(head))
        return "\n".join([rule, line(head), rule] + [line(c) for c in cells] + [
            rule,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total mult-adds (M): {self.total_macs / 1e6:.2f}",
            f"Input shape: {self.input_shape}",
            rule])

    __repr__ = __str__


def summary(model, input_shape=(1, 3, 32, 32), depth=3, verbose=True):
    """Run ``model`` once on a random batch of ``input_shape`` and tabulate its layers.

    The pass runs in evaluation mode (batch norm statistics are not touched; every module's
    mode is restored afterwards) under ``no_grad``, on the device and in the dtype of the
    model's first parameter. ``depth`` limits the rows printed (nesting level; None: all);
    the totals always include every layer. Prints the table when ``verbose`` and returns a
    ``ModelSummary``.
    """
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else backend.get_default_device()
    dtype = first.dtype if first is not None else np.float32
    x = Tensor(backend.randn(tuple(input_shape), dtype=dtype, device=device), dtype=dtype)
    names = {id(m): name for name, m in model.named_modules()}
    rows, stack, seen = [], [], set()
    modes = [(m, m.training) for m in model.modules()]
    original_call = nn.Module.__call__

    def recording_call(module, *args, **kwargs):
        name = names.get(id(module))
        if name is None or module is model:  # the model itself is the totals line
            return original_call(module, *args, **kwargs)
        row = dict(name=name, type=type(module).__name__, depth=name.count(".") + 1,
                   params=None if id(module) in seen else module.num_parameters())
        seen.add(id(module))
        rows.append(row)            # rows in call order: a parent before its children
        stack.append(0)             # the children's MACs accumulate here
        try:
            out = original_call(module, *args, **kwargs)
        finally:
            children = stack.pop()
        own = _macs(module, args, out)
        row.update(output_shape=_shape(out), macs=own + children, own_macs=own)
        if stack:
            stack[-1] += own + children
        return out

    # Calls look __call__ up on the class, so the recording wrapper is installed there for
    # the duration of the pass (and always removed again).
    nn.Module.__call__ = recording_call
    try:
        model.eval()
        with no_grad():
            model(x)
    finally:
        nn.Module.__call__ = original_call
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    result = ModelSummary(rows, model.num_parameters(), model.num_parameters(trainable_only=True),
                          sum(r["own_macs"] for r in rows), input_shape, depth)
    if verbose:
        print(result)
    return result
