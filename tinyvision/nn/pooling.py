"""Pooling layers over (N, C, H, W) images."""
from .. import ops
from ..ops import resize
from ..ops.conv import _pair
from .module import Module


def _check_image(module, x):
    if x.ndim != 4:
        raise ValueError(f"{type(module).__name__} expected input (N, C, H, W), got {tuple(x.shape)}")


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride")
        self.padding = _pair(padding, "padding")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """y[n, c, i, j] = max_{u < KH, v < KW} x_pad[n, c, i s + u, j s + v] (padding with -inf);
    the gradient flows to the maximum of each window.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = floor((H + 2p - KH) / s) + 1; stride
    defaults to the kernel size (non-overlapping windows).
    """

    def forward(self, x):
        _check_image(self, x)
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """y[n, c, i, j] = (1 / (KH KW)) sum_{u, v} x_pad[n, c, i s + u, j s + v] (zero padding
    counted in the average, PyTorch's default).

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = floor((H + 2p - KH) / s) + 1.
    """

    def forward(self, x):
        _check_image(self, x)
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (Ho, Wo), whatever the input size: output cell
    (i, j) averages rows floor(i H / Ho) .. ceil((i + 1) H / Ho) - 1 and the likewise columns.
    ``AdaptiveAvgPool2d(1)`` is global average pooling.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo).
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        _check_image(self, x)
        return resize.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
