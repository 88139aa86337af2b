"""Self-checks of chapter 3's exercises (batch norm's statistics and backward pass, the
bottleneck block's parameters, a pre-activation bottleneck block)."""
import numpy as np

import tinyvision as tv
from tinyvision.tensor import Function

from . import as_array, self_check


def skewed_batch():
    """The fixed input of exercise 1: 512 exponential values in each of 4 channels, shape (512, 4)."""
    return np.random.default_rng(0).exponential(size=(512, 4)).astype(np.float32)


def skewness(x):
    """Sample skewness of each column of x (N, C): mean(z^3) with z the standardised column."""
    x = np.asarray(x, np.float64)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    return (z ** 3).mean(axis=0)


@self_check
def bn_output_skewness(prediction):
    """Exercise: the skewness of batch norm's output, channel 0, for ``skewed_batch()``."""
    bn = tv.nn.BatchNorm1d(4)
    bn.weight.data[:] = [1.5, 0.5, 2.0, 1.0]
    bn.bias.data[:] = [0.3, -1.0, 0.0, 2.0]
    measured = float(skewness(bn(tv.tensor(skewed_batch())).numpy())[0])
    ok = abs(float(prediction) - measured) < 0.02
    return ok, f"you predicted {float(prediction):.2f}; batch norm's output has skewness {measured:.2f}" + (
        "" if ok else " (batch norm subtracts a mean, divides by a standard deviation, scales and shifts: "
                      "which statistics of a distribution can such a map change?)")


@self_check
def bottleneck_params(count):
    """Exercise: parameters of the bottleneck block Bottleneck(256, 64) of ResNet-50's first stage."""
    truth = tv.models.Bottleneck(256, 64).num_parameters()
    ok = int(count) == truth
    return ok, f"{int(count):,} parameters" + (
        ", right: 3x3 convolutions at 64 channels cost 9 x 64 x 64 = 36,864 weights, a basic block's two at "
        "256 would cost 1,179,648" if ok else
        f", not the block's count (convolutions have no bias: k x k x in x out weights each; batch norm "
        f"has 2 per channel; the identity shortcut has none); you are {int(count) - truth:+,} off")


class _StudentBatchNorm(Function):
    """Batch norm over (N, C, H, W) per channel (forward in NumPy, training mode); its backward
    is the student's ``backward(grad, x, gamma, eps) -> (dx, dgamma, dbeta)``."""

    def forward(self, x, gamma, beta, backward=None, eps=1e-5):
        self.x, self.gamma, self.eps, self.student = x, gamma, eps, backward
        mu = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        return gamma.reshape(1, -1, 1, 1) * (x - mu) / np.sqrt(var + eps) + beta.reshape(1, -1, 1, 1)

    def backward(self, grad):
        return self.student(grad, self.x, self.gamma, self.eps)


@self_check
def batch_norm_backward(backward):
    """Exercise: batch norm's backward pass for images, (dx, dgamma, dbeta), checked by tv.gradcheck."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 2, 4, 4)) * 2 + 1
    gamma, beta = rng.uniform(0.5, 2, 2), rng.normal(size=2)
    grad = rng.normal(size=x.shape)
    out = backward(grad, x.copy(), gamma.copy(), 1e-5)
    if not isinstance(out, tuple) or len(out) != 3:
        return False, f"return a tuple (dx, dgamma, dbeta), got {type(out).__name__}"
    for value, shape, what in zip(out, (x.shape, (2,), (2,)), ("dx", "dgamma", "dbeta")):
        _, problem = as_array(value, shape, what)
        if problem:
            return False, problem
    tensors = [tv.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, gamma, beta)]
    result = tv.gradcheck(lambda *t: _StudentBatchNorm.apply(*t, backward=backward), *tensors,
                          raise_exception=False)
    if not result:
        bad = [("dx", "dgamma", "dbeta")[e["input"]] for e in result.entries if e["max_rel_error"] > result.tol]
        return False, (f"tv.gradcheck disagrees on {', '.join(bad)} (the statistics run over axes (0, 2, 3): "
                       f"M = N H W values per channel, and gamma broadcasts as (1, C, 1, 1))")
    return True, "tv.gradcheck (central differences, float64) agrees with dx, dgamma and dbeta on a (3, 2, 4, 4) input"


@self_check
def preact_bottleneck(build):
    """Exercise: a pre-activation bottleneck block with an identity shortcut, from tinyvision layers."""
    channels, planes = 16, 4
    block = build(channels)
    if not isinstance(block, tv.nn.Module):
        return False, f"preact_bottleneck(16) should return a tv.nn.Module, got {type(block).__name__}"
    block.train()
    x = tv.randn(2, channels, 5, 5)
    y = block(x)
    if tuple(y.shape) != (2, channels, 5, 5):
        return False, f"output shape {tuple(y.shape)}, expected the input's (2, 16, 5, 5) (identity shortcut)"
    expected = 17 * planes ** 2 + 12 * planes
    if block.num_parameters() != expected:
        return False, (f"{block.num_parameters()} parameters, expected {expected} for 16 channels: BN(16), 1x1 conv "
                       f"16 -> 4, BN(4), 3x3 conv 4 -> 4, BN(4), 1x1 conv 4 -> 16, convolutions without bias")
    saved = [(p, p.data.copy()) for p in block.parameters() if p.ndim == 4]
    for p, _ in saved:
        p.data[...] = 0.0
    if not np.array_equal(block(x).numpy(), x.numpy()):
        return False, ("with every convolution's weights at zero F(x) = 0, so y should equal x exactly; it does not "
                       "(is there a ReLU or batch norm after the addition?)")
    for p, value in saved:
        p.data[...] = value
    block.to(np.float64)
    result = tv.gradcheck(block, tv.randn(2, channels, 3, 3), raise_exception=False)
    if not result:
        return False, f"tv.gradcheck of the block fails: {str(result).splitlines()[-1].strip()}"
    return True, ("shape kept, 320 parameters, y = x when F = 0, and tv.gradcheck passes on the block")
