"""Solutions to the exercises of chapter 3 (chapters/03_resnet.ipynb, "Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np

import tinyvision as tv
from checks.ch03 import skewed_batch, skewness

# Exercise 1. Per channel, batch norm computes y = gamma (x - mu) / sigma + beta: an increasing
# affine map (gamma > 0). Skewness, mean((x - mu)^3) / sigma^3, is invariant under such maps, so
# the output is exactly as skewed as the input (about 2 for exponential values), not normal.
bn_output_skewness = float(skewness(skewed_batch())[0])

# Exercise 2. conv1 1x1 256 -> 64: 16,384; bn1: 128; conv2 3x3 64 -> 64: 36,864; bn2: 128;
# conv3 1x1 64 -> 256: 16,384; bn3: 512; identity shortcut: 0. Total 70,400: the 3x3 convolution
# runs at a quarter of the width, where a basic block's two 3x3 at 256 would need 1,179,648.
bottleneck_params = 16_384 + 128 + 36_864 + 128 + 16_384 + 512


def batch_norm_backward(grad, x, gamma, eps):
    """The compact formula of section 3.3 with the statistics over axes (0, 2, 3):
    dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps), dxhat = grad gamma."""
    axes = (0, 2, 3)
    mu = x.mean(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - mu) * invstd
    dxhat = grad * gamma.reshape(1, -1, 1, 1)
    dx = invstd * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                   - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    return dx, (grad * xhat).sum(axis=axes), grad.sum(axis=axes)


class PreActBottleneck(tv.nn.Module):
    """He et al. 2016b, "Identity Mappings in Deep Residual Networks", Fig. 4(e) with a bottleneck:
    F(x) = conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))), y = x + F(x)."""

    def __init__(self, channels):
        super().__init__()
        planes = channels // 4
        self.bn1, self.conv1 = tv.nn.BatchNorm2d(channels), tv.nn.Conv2d(channels, planes, 1, bias=False)
        self.bn2, self.conv2 = tv.nn.BatchNorm2d(planes), tv.nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn3, self.conv3 = tv.nn.BatchNorm2d(planes), tv.nn.Conv2d(planes, channels, 1, bias=False)
        self.relu = tv.nn.ReLU()

    def forward(self, x):
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return x + self.conv3(self.relu(self.bn3(out)))


def preact_bottleneck(channels):
    return PreActBottleneck(channels)
