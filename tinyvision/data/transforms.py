"""Batch transforms: augmentation vectorised over a whole batch.

Convention: geometric and colour transforms take a batch of images ``x`` (N, H, W, C), uint8
or float, and return the same layout; ``ToTensor`` turns it into float32 (N, C, H, W) in
[0, 1]; ``Normalize`` and ``Cutout`` act on that. A single image (H, W, C) is treated as a
batch of one. Each transform takes ``rng`` (a NumPy Generator) for its random choices, so the
DataLoader can give every batch its own reproducible stream. Arrays may be NumPy or CuPy
(augmentation on the GPU): random parameters are drawn on the host, pixels move on the device.
"""
import math

import numpy as np

from .. import backend


def _as_batch(x):
    return (x[None], True) if x.ndim == 3 else (x, False)


def _rng(rng):
    return rng if rng is not None else backend.generator("cpu")


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        rng = _rng(rng)
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class RandomCrop:
    """Pad each image by ``padding`` (zeros) and cut a random size x size window from it:
    translations by up to ``padding`` pixels, one offset per image."""

    def __init__(self, size, padding=0):
        self.size, self.padding = size, padding

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp, rng, p, s = backend.array_module(x), _rng(rng), self.padding, self.size
        N, H, W, _ = x.shape
        if s > min(H, W) + 2 * p:
            raise ValueError(f"RandomCrop({s}, padding={p}) needs images of at least {s - 2 * p} pixels "
                             f"a side, got {H}x{W} (expected (N, H, W, C) or (H, W, C))")
        if p:
            x = xp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        dy = xp.asarray(rng.integers(0, H + 2 * p - s + 1, N))
        dx = xp.asarray(rng.integers(0, W + 2 * p - s + 1, N))
        ar = xp.arange(s)
        rows, cols = dy[:, None] + ar, dx[:, None] + ar                      # (N, s) each
        out = x[xp.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return out[0] if single else out

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability p."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp = backend.array_module(x)
        flip = xp.asarray(_rng(rng).random(len(x)) < self.p)
        out = xp.where(flip[:, None, None, None], x[:, :, ::-1], x)
        return out[0] if single else out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from [-degrees, degrees] about its centre,
    counter-clockwise as displayed for positive angles (nearest-neighbour sampling; pixels from
    outside the image are 0). With (y, x) measured from the centre c, output pixel p reads the
    source at (y cos t + x sin t, -y sin t + x cos t) + c, for the whole batch in one gather."""

    def __init__(self, degrees):
        self.degrees = degrees

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp = backend.array_module(x)
        N, H, W, _ = x.shape
        theta = xp.asarray(np.deg2rad(_rng(rng).uniform(-self.degrees, self.degrees, N)))
        cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
        yy, xx = xp.meshgrid(xp.arange(H) - cy, xp.arange(W) - cx, indexing="ij")
        cos, sin = xp.cos(theta)[:, None, None], xp.sin(theta)[:, None, None]
        sy = xp.rint(cos * yy + sin * xx + cy).astype(np.int64)
        sx = xp.rint(-sin * yy + cos * xx + cx).astype(np.int64)
        inside = (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
        out = x[xp.arange(N)[:, None, None], xp.clip(sy, 0, H - 1), xp.clip(sx, 0, W - 1)]
        out = out * inside[..., None].astype(out.dtype)
        return out[0] if single else out

    def __repr__(self):
        return f"RandomRotation({self.degrees})"


class ColorJitter:
    """Random brightness, contrast and saturation, one factor per image for each, drawn from
    [1 - s, 1 + s]:  brightness x*f;  contrast mean + (x - mean)*f (mean over the image's
    grey levels);  saturation grey + (x - grey)*f (grey = 0.299 R + 0.587 G + 0.114 B)."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp, rng = backend.array_module(x), _rng(rng)
        dtype = x.dtype
        y = x.astype(np.float32)
        N = len(x)

        def factors(s):
            return xp.asarray(rng.uniform(1 - s, 1 + s, N).astype(np.float32))[:, None, None, None]

        weights = xp.asarray(np.array([0.299, 0.587, 0.114], np.float32))
        if self.brightness:
            y *= factors(self.brightness)
        if self.contrast:
            mean = (y @ weights).mean(axis=(1, 2))[:, None, None, None]
            y = mean + (y - mean) * factors(self.contrast)
        if self.saturation:
            grey = (y @ weights)[..., None]
            y = grey + (y - grey) * factors(self.saturation)
        if dtype == np.uint8:
            y = xp.clip(xp.rint(y), 0, 255).astype(np.uint8)
        return y[0] if single else y

    def __repr__(self):
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation})"


class ToTensor:
    """(N, H, W, C) uint8 in [0, 255] -> float32 (N, C, H, W) in [0, 1]."""

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp = backend.array_module(x)
        out = xp.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
        out *= 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
        return out[0] if single else out

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel on float (N, C, H, W)."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)

    def __call__(self, x, rng=None):
        if x.ndim not in (3, 4) or x.shape[-3] != self.mean.shape[1] or x.dtype == np.uint8:
            raise ValueError(f"Normalize expects float (N, C, H, W) or (C, H, W) with C = {self.mean.shape[1]} "
                             f"(apply ToTensor first), got {x.dtype} {x.shape}")
        xp = backend.array_module(x)
        mean, std = (self.mean[0], self.std[0]) if x.ndim == 3 else (self.mean, self.std)
        return (x - xp.asarray(mean)) / xp.asarray(std)

    def __repr__(self):
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class Cutout:
    """Zero a random size x size square (clipped at the border) in each image of a float
    (N, C, H, W) batch (DeVries and Taylor 2017); after Normalize, zero is the mean colour."""

    def __init__(self, size):
        self.size = size

    def __call__(self, x, rng=None):
        x, single = _as_batch(x)
        xp, rng = backend.array_module(x), _rng(rng)
        N, _, H, W = x.shape
        cy, cx = rng.integers(0, H, N), rng.integers(0, W, N)
        half = self.size // 2
        rows = xp.arange(H)[None, :]
        cols = xp.arange(W)[None, :]
        in_rows = (rows >= xp.asarray(cy - half)[:, None]) & (rows < xp.asarray(cy - half + self.size)[:, None])
        in_cols = (cols >= xp.asarray(cx - half)[:, None]) & (cols < xp.asarray(cx - half + self.size)[:, None])
        keep = ~(in_rows[:, :, None] & in_cols[:, None, :])                  # (N, H, W)
        out = x * keep[:, None].astype(x.dtype)
        return out[0] if single else out

    def __repr__(self):
        return f"Cutout({self.size})"
