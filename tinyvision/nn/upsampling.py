"""Upsampling (resizing) of images."""
from ..ops import resize
from .module import Module


class Upsample(Module):
    """Resize (N, C, H, W) images to ``size`` (Ho, Wo) or by ``scale_factor``
    (Ho = floor(H * scale_factor)).

    mode='nearest': output pixel i copies input min(floor(i r), H - 1), r = H / Ho;
    mode='bilinear': linear interpolation along each axis at the source coordinate
        src = (i + 0.5) r - 0.5 (clamped at 0)        align_corners=False (default)
        src = i (H - 1) / (Ho - 1)                     align_corners=True
    Both are separable linear maps y = A x B^T; see ``ops.resize``.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo).
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        if mode == "bilinear" and align_corners is None:
            align_corners = False
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"Upsample expected input (N, C, H, W), got {tuple(x.shape)}")
        return resize.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}" + ("" if self.align_corners is None else f", align_corners={self.align_corners}")
