"""Weight initialisation, in place on a Tensor's array (PyTorch's ``torch.nn.init`` names).

Random numbers come from ``backend``'s seeded generator on the tensor's device and are drawn
directly in the tensor's dtype, so a float32 weight never goes through a float64 temporary.

Why the scales: for y = W x with fan_in inputs of variance v and zero-mean weights of variance
s^2, var(y) = fan_in s^2 v. Keeping the variance of activations (or, with fan_out, of
gradients) constant across layers gives

    Kaiming (He):   std = gain / sqrt(fan)                   (fan = fan_in or fan_out)
    Xavier (Glorot): std = gain * sqrt(2 / (fan_in + fan_out))

and a uniform distribution on [-b, b] has std b / sqrt(3), so b = sqrt(3) std.
"""
import math

from .. import backend


def _generator(t):
    return backend.generator(t.device)


def _calculate_fan_in_and_fan_out(t):
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field, where the
    receptive field is the product of the trailing (kernel) dimensions: for a Linear weight
    (out, in) and a Conv2d weight (out, in/groups, KH, KW)."""
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {t.shape}")
    receptive = 1
    for n in t.shape[2:]:
        receptive *= n
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity changes the standard deviation of its input:
    1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu (it zeroes half the signal),
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope default 0.01), 3/4 for selu."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"leaky_relu's negative slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(t, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    r = _generator(t).random(t.shape, dtype=t.dtype)
    r *= b - a
    r += a
    t.data[...] = r
    return t


def normal_(t, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    r = _generator(t).standard_normal(t.shape, dtype=t.dtype)
    r *= std
    r += mean
    t.data[...] = r
    return t


def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill with N(mean, std^2) conditioned on [a, b] (absolute bounds, as in PyTorch: with
    std=0.02 the default [-2, 2] cuts nothing). Rejection sampling: values outside [a, b] are
    redrawn until none is left; each round keeps a fraction p = P(a <= x <= b) of them."""
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    cdf = lambda x: 0.5 * (1.0 + math.erf((x - mean) / (std * math.sqrt(2.0))))
    p = cdf(b) - cdf(a)
    if p < 1e-3:
        raise ValueError(f"trunc_normal_: [{a}, {b}] holds only {p:.2g} of N({mean}, {std}^2); "
                         "rejection sampling would take too long")
    normal_(t, mean, std)
    xp = backend.array_module(t.data)
    bad = xp.flatnonzero((t.data < a) | (t.data > b))
    flat = t.data.reshape(-1)  # a view: t.data is contiguous
    while bad.size:
        draw = _generator(t).standard_normal(bad.size, dtype=t.dtype) * std + mean
        flat[bad] = draw
        bad = bad[(draw < a) | (draw > b)]
    return t


def constant_(t, value):
    t.data[...] = value
    return t


def zeros_(t):
    return constant_(t, 0)


def ones_(t):
    return constant_(t, 1)


def _kaiming_std(t, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = sqrt(3) gain / sqrt(fan); ``a`` is leaky_relu's negative slope.
    PyTorch's Linear/Conv default is a=sqrt(5): gain sqrt(1/3), so b = 1 / sqrt(fan_in)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity))


def xavier_uniform_(t, gain=1.0):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def default_layer_init_(weight, bias):
    """PyTorch's default for Linear and convolutions: kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for the weight, and the same bound for the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
