"""Convolution layers (the arithmetic lives in ``ops.conv``)."""
from .. import ops
from ..ops.conv import _pair
from . import init
from .module import Module, new_parameter


class _ConvNd(Module):
    """Shared configuration, parameters and input check of Conv2d and ConvTranspose2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, weight_shape, device, dtype):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        kw = dict(device=device, dtype=dtype)
        self.weight = new_parameter(weight_shape + self.kernel_size, **kw)
        self.bias = new_parameter((out_channels,), **kw) if bias else None
        init.default_layer_init_(self.weight, self.bias)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expected input (N, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))):
            value = getattr(self, name, default)
            if value != default:
                s += f", {name}={value}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C_in, H, W):

        y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] x_pad[n, g(o) C_in/G + c, i s + u d, j s + v d]

    with zero padding p, stride s, dilation d and G groups (output channel o sees only the
    C_in/G input channels of its group g(o)).

    Shapes: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo), Ho = floor((H + 2p - d (KH - 1) - 1) / s) + 1
    (likewise Wo); W (C_out, C_in/G, KH, KW), b (C_out,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, (out_channels, in_channels // groups), device, dtype)

    def forward(self, x):
        self._check_input(x)
        return ops.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                          dilation=self.dilation, groups=self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed convolution, the adjoint (gradient) of Conv2d with the same configuration:
    each input pixel scatters a weighted copy of the kernel into the output,

        y[n, o, i s - p + u d, j s - p + v d] += W[c, o', u, v] x[n, c, i, j]

    (o' indexes the output channels of c's group), plus the bias b[o].

    Shapes: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo),
    Ho = (H - 1) s - 2p + d (KH - 1) + output_padding + 1 (likewise Wo);
    W (C_in, C_out/G, KH, KW), b (C_out,). ``output_padding`` (< s or < d) picks among the
    output sizes that a stride-s Conv2d maps to the same H.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, (in_channels, out_channels // groups), device, dtype)
        self.output_padding = _pair(output_padding, "output_padding")

    def forward(self, x):
        self._check_input(x)
        return ops.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                    output_padding=self.output_padding, dilation=self.dilation,
                                    groups=self.groups)
