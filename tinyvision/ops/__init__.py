"""The differentiable ops, as functions on Tensors (and as Tensor methods, attached below).

Each op family lives in its own module with its Function classes (forward, backward and the
formula together): ``elementwise``, ``reduce``, ``shape``, ``linalg``, ``conv``, ``pool``,
``norm``, ``attention``, ``loss``, ``resize``. This module is the thin functional layer users
call: ``tv.exp(x)``, ``tv.nn.functional.conv2d(x, w)``, ``x.sum(axis=1)``.
"""
from ..tensor import Tensor
from . import conv as _conv
from . import pool as _pool
from . import elementwise as _ew
from . import linalg as _linalg
from . import loss as _loss
from . import norm as _norm
from . import reduce as _red
from . import shape as _shape


def _data(x):
    return x.data if isinstance(x, Tensor) else x


# ------------------------------------------------------------------ elementwise
def add(a, b): return _ew.Add.apply(a, b)
def sub(a, b): return _ew.Sub.apply(a, b)
def mul(a, b): return _ew.Mul.apply(a, b)
def div(a, b): return _ew.Div.apply(a, b)
def neg(a): return _ew.Neg.apply(a)
def pow(a, b): return _ew.Pow.apply(a, b)
def exp(a): return _ew.Exp.apply(a)
def log(a): return _ew.Log.apply(a)
def sqrt(a): return _ew.Sqrt.apply(a)
def abs(a): return _ew.Abs.apply(a)
def maximum(a, b): return _ew.Maximum.apply(a, b)
def minimum(a, b): return _ew.Minimum.apply(a, b)
def relu(a): return _ew.ReLU.apply(a)
def sigmoid(a): return _ew.Sigmoid.apply(a)
def tanh(a): return _ew.Tanh.apply(a)


def clip(a, min=None, max=None):
    """Clamp to [min, max] (either may be None); the gradient is zero where clamped."""
    return _ew.Clip.apply(a, lo=min, hi=max)


def where(cond, a, b):
    """a where cond else b; cond is a boolean tensor or array (no gradient)."""
    return _ew.Where.apply(a, b, cond=_data(cond))


def leaky_relu(a, negative_slope=0.01):
    return _ew.LeakyReLU.apply(a, negative_slope=negative_slope)


def gelu(a, approximate="none"):
    """GELU, exact (erf) or with approximate='tanh'; see ``elementwise.GELU``."""
    return _ew.GELU.apply(a, approximate=approximate)


def dropout(a, p=0.5, training=True):
    """Inverted dropout with drop probability p; the identity when not training or p == 0."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return a
    return _ew.Dropout.apply(a, p=float(p))


# ------------------------------------------------------------------ reductions
def sum(a, axis=None, keepdims=False): return _red.Sum.apply(a, axis=axis, keepdims=keepdims)
def mean(a, axis=None, keepdims=False): return _red.Mean.apply(a, axis=axis, keepdims=keepdims)
def max(a, axis=None, keepdims=False): return _red.Max.apply(a, axis=axis, keepdims=keepdims)
def min(a, axis=None, keepdims=False): return _red.Min.apply(a, axis=axis, keepdims=keepdims)


def var(a, axis=None, keepdims=False, ddof=0):
    """Variance; ddof=0 is the population variance, ddof=1 the unbiased estimate."""
    return _red.Var.apply(a, axis=axis, keepdims=keepdims, ddof=ddof)


def logsumexp(a, axis=-1, keepdims=False): return _red.LogSumExp.apply(a, axis=axis, keepdims=keepdims)
def softmax(a, axis=-1): return _red.Softmax.apply(a, axis=axis)
def log_softmax(a, axis=-1): return _red.LogSoftmax.apply(a, axis=axis)


# ------------------------------------------------------------------ shape
def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def reshape(a, *shape): return _shape.Reshape.apply(a, shape=_shape_arg(shape))


def flatten(a, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (PyTorch's flatten)."""
    s = a.shape
    start, end = start_dim % len(s), end_dim % len(s)
    n = 1
    for d in s[start:end + 1]:
        n *= d
    return reshape(a, s[:start] + (n,) + s[end + 1:])


def permute(a, *axes): return _shape.Permute.apply(a, axes=_shape_arg(axes))


def transpose(a, dim0=None, dim1=None):
    """Swap two axes (PyTorch's transpose); with no axes, reverse them all (numpy's)."""
    if dim0 is None:
        return _shape.Permute.apply(a, axes=None)
    axes = list(range(a.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return _shape.Permute.apply(a, axes=tuple(axes))


swapaxes = transpose


def unsqueeze(a, axis):
    axis = axis % (a.ndim + 1)
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def squeeze(a, axis=None):
    if axis is None:
        return reshape(a, tuple(n for n in a.shape if n != 1))
    axis = axis % a.ndim
    if a.shape[axis] != 1:
        raise ValueError(f"squeeze: axis {axis} has size {a.shape[axis]}, not 1")
    return reshape(a, a.shape[:axis] + a.shape[axis + 1:])


def broadcast_to(a, *shape): return _shape.BroadcastTo.apply(a, shape=_shape_arg(shape))
def getitem(a, index): return _shape.GetItem.apply(a, index=_shape._index_data(index))


def concatenate(tensors, axis=0): return _shape.Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0): return _shape.Stack.apply(*tensors, axis=axis)


def split(a, split_size_or_sections, axis=0):
    """Split into pieces of ``split_size`` along axis (the last may be smaller), or into
    pieces of the listed sizes (PyTorch's split)."""
    n = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if builtin_sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to axis {axis}'s length {n}")
    lead = (slice(None),) * (axis % a.ndim)
    out, start = [], 0
    for size in sizes:
        out.append(a[lead + (slice(start, start + size),)])
        start += size
    return out


def chunk(a, chunks, axis=0):
    """Split into ``chunks`` nearly equal pieces (the last may be smaller)."""
    n = a.shape[axis]
    return split(a, -(-n // chunks), axis)


def pad(a, pad_width, value=0.0):
    """Constant padding with numpy's pad_width: an int, or ((before, after), ...) per axis."""
    if isinstance(pad_width, int):
        pad_width = ((pad_width, pad_width),) * a.ndim
    return _shape.Pad.apply(a, pad_width=tuple(tuple(p) for p in pad_width), value=value)


# ------------------------------------------------------------------ products
def matmul(a, b): return _linalg.MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """y = x W^T + b, x (..., in), W (out, in), b (out,) -> (..., out)."""
    return _linalg.Linear.apply(x, weight) if bias is None else _linalg.Linear.apply(x, weight, bias)


# ------------------------------------------------------------------ convolution and pooling
def _with_bias(fn, x, weight, bias, **options):
    return fn.apply(x, weight, **options) if bias is None else fn.apply(x, weight, bias, **options)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution; x (N, C, H, W), weight (O, C/groups, KH, KW) -> (N, O, Ho, Wo)."""
    return _with_bias(_conv.Conv2d, x, weight, bias, stride=stride, padding=padding,
                      dilation=dilation, groups=groups)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution; weight (C_in, C_out/groups, KH, KW)."""
    return _with_bias(_conv.ConvTranspose2d, x, weight, bias, stride=stride, padding=padding,
                      output_padding=output_padding, dilation=dilation, groups=groups)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool.MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool.AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


# ------------------------------------------------------------------ normalisation
def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=True,
               momentum=0.1, eps=1e-5):
    """Batch norm over (N, C[, H, W]) per channel; updates running stats in place when training."""
    options = dict(running_mean=_data(running_mean), running_var=_data(running_var),
                   training=training, momentum=float(momentum), eps=float(eps))
    params = [p for p in (weight, bias) if p is not None]
    if len(params) == 1:
        raise ValueError("batch_norm: pass both weight and bias, or neither")
    return _norm.BatchNorm.apply(x, *params, **options)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm over the trailing axes given by normalized_shape."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape {normalized_shape}")
    params = [p for p in (weight, bias) if p is not None]
    if len(params) == 1:
        raise ValueError("layer_norm: pass both weight and bias, or neither")
    return _norm.LayerNorm.apply(x, *params, normalized_ndim=len(normalized_shape), eps=float(eps))


# ------------------------------------------------------------------ losses
def cross_entropy(logits, target, weight=None, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    """Softmax cross-entropy with integer targets; see ``loss.CrossEntropy``."""
    return _loss.CrossEntropy.apply(logits, target, weight=_data(weight),
                                    label_smoothing=float(label_smoothing), reduction=reduction,
                                    ignore_index=ignore_index)


def mse_loss(a, b, reduction="mean"):
    return _loss.MSELoss.apply(a, b, reduction=reduction)


# ------------------------------------------------------------------ Tensor methods
import builtins as _builtins  # noqa: E402

builtin_sum = _builtins.sum


def _attach():
    methods = dict(
        exp=exp, log=log, sqrt=sqrt, abs=abs, relu=relu, sigmoid=sigmoid, tanh=tanh, gelu=gelu,
        sum=sum, mean=mean, max=max, min=min, var=var, logsumexp=logsumexp,
        softmax=softmax, log_softmax=log_softmax, clip=clip, clamp=clip, pow=pow,
        maximum=maximum, minimum=minimum, matmul=matmul, reshape=reshape, view=reshape,
        flatten=flatten, permute=permute, transpose=transpose, swapaxes=swapaxes,
        unsqueeze=unsqueeze, squeeze=squeeze, broadcast_to=broadcast_to, expand=broadcast_to,
        split=split, chunk=chunk, pad=pad)
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


_attach()
