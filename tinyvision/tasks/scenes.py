"""Generated scenes for detection and segmentation: CIFAR-10 objects pasted onto textures.

A scene is a ``size`` x ``size`` canvas (64 by default) with a textured background and 1 to 4
objects. Each object is a whole 32x32 source image resized (nearest neighbour) to a w x h
rectangle, w and h in [min_size, max_size] (aspect ratio at most 4:3), and cut out by the
ellipse inscribed in that rectangle:

    pixel (u, v) of the rectangle is the object's  <=>  ((u + 0.5) / w - 0.5)^2 + ((v + 0.5) / h - 0.5)^2 <= 1/4

So the annotations are exact by construction:

- box (x1, y1, x2, y2) = the pasted rectangle, in pixels, x2 = x1 + w (exclusive edge);
- mask: 0 = background, 1 + class where the object's ellipse shows; objects are painted in
  order, so a later one covers an earlier one, but placement rejects any rectangle that
  overlaps an earlier one by more than ``max_overlap`` of the smaller area (tried ``tries``
  times per object, else the object is left out), so every object stays mostly visible and
  its box contains its visible mask.

Backgrounds are half smooth colour noise (an 8x8 random colour field resized bilinearly) and
half stripes (two random colours, random angle, period and phase), so that "not flat" never
means "object".

Everything is drawn from ``np.random.default_rng(seed)`` in a fixed order and vectorised over
scenes (the only Python loops run over the <= 4 object slots), so a seed gives the same
scenes on every machine. Train scenes take their objects from CIFAR's train split and test
scenes from its test split (``scene_splits``), cached as .npz (``allow_pickle=False``).
"""
import hashlib
import json
import os

import numpy as np

from ..fileio import atomic_open
from ..ops.resize import bilinear_matrix

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)     # CIFAR-10 channel statistics
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


def _backgrounds(rng, n, size):
    """(n, size, size, 3) uint8: even scenes smooth noise, odd ones stripes (colours random)."""
    A = bilinear_matrix(8, size)                                   # (size, 8)
    noise = rng.uniform(0, 255, (n, 8, 8, 3))
    smooth = (A @ noise.transpose(0, 3, 1, 2) @ A.T).transpose(0, 2, 3, 1)   # A X A^T per channel
    angle = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    period = rng.uniform(6, 20, n).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    c0, c1 = rng.uniform(0, 255, (2, n, 1, 1, 3)).astype(np.float32)
    y, x = np.mgrid[:size, :size].astype(np.float32)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + phase)
    stripes = c0 + (c1 - c0) * t[..., None]
    striped = (np.arange(n) % 2 == 1)[:, None, None, None]
    return np.where(striped, stripes, smooth).round().astype(np.uint8)


def _overlap(a, b):
    """Intersection over the smaller area of boxes a (..., 4) and b (..., 4)."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])
    return w * h / np.minimum(area(a), area(b))


def make_scenes(images, labels, n, size=64, min_objects=1, max_objects=4, min_size=16, max_size=40,
                max_overlap=0.2, tries=10, seed=0):
    """Generate ``n`` scenes from source images (see the module docstring).

    Inputs:
    - images: uint8 (N, h, w, 3) source objects (CIFAR images, or random ones in tests).
    - labels: int (N,) their classes 0..K-1.
    - n: number of scenes; size: canvas side; min/max_objects: objects wanted per scene;
      min/max_size: side range of a pasted object; seed: the generator's seed.

    Returns a dict of arrays:
    - images: uint8 (n, size, size, 3)
    - masks: uint8 (n, size, size), 0 background, 1 + class
    - boxes: float32 (M, 4) xyxy of all M objects, scene by scene
    - labels: int64 (M,)
    - offsets: int64 (n + 1,), scene i owns objects offsets[i]:offsets[i + 1]
    """
    images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be uint8 (N, h, w, 3), got {images.dtype} {images.shape}")
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (> 0), got {len(images)} images, {len(labels)} labels")
    if not 1 <= min_objects <= max_objects or not 1 <= min_size <= max_size <= size:
        raise ValueError(f"need 1 <= min_objects <= max_objects and 1 <= min_size <= max_size <= size, got "
                         f"objects {min_objects}..{max_objects}, sizes {min_size}..{max_size}, size {size}")
    rng = np.random.default_rng(seed)
    canvas = _backgrounds(rng, n, size)
    masks = np.zeros((n, size, size), np.uint8)
    wanted = rng.integers(min_objects, max_objects + 1, n)
    boxes = np.zeros((n, max_objects, 4), np.int64)
    placed = np.zeros((n, max_objects), bool)
    source = np.zeros((n, max_objects), np.int64)
    sh, sw = images.shape[1:3]
    v, u = np.mgrid[:max_size, :max_size]
    for j in range(max_objects):
        # `tries` candidate rectangles per scene; keep the first that overlaps little enough
        side = rng.uniform(min_size, max_size, (n, tries))
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3), (n, tries)))
        w = np.clip(np.round(side * np.sqrt(aspect)), min_size, max_size).astype(np.int64)
        h = np.clip(np.round(side / np.sqrt(aspect)), min_size, max_size).astype(np.int64)
        x1 = (rng.uniform(0, 1, (n, tries)) * (size - w + 1)).astype(np.int64)
        y1 = (rng.uniform(0, 1, (n, tries)) * (size - h + 1)).astype(np.int64)
        cand = np.stack([x1, y1, x1 + w, y1 + h], -1)                       # (n, tries, 4)
        src = rng.integers(0, len(images), n)
        clash = (_overlap(cand[:, :, None], boxes[:, None, :j]) > max_overlap) & placed[:, None, :j]
        ok = ~clash.any(-1)                                                 # (n, tries)
        first = ok.argmax(1)
        take = ok.any(1) & (j < wanted)
        boxes[:, j] = cand[np.arange(n), first]
        placed[:, j], source[:, j] = take, src
        # paint the chosen rectangles: one object per scene in this slot, so no write clashes
        s = np.flatnonzero(take)
        bx = boxes[s, j]
        bw, bh = (bx[:, 2] - bx[:, 0])[:, None, None], (bx[:, 3] - bx[:, 1])[:, None, None]
        inside = (((u + 0.5) / bw - 0.5) ** 2 + ((v + 0.5) / bh - 0.5) ** 2 <= 0.25) & (u < bw) & (v < bh)
        k, vv, uu = np.nonzero(inside)
        sy = (vv * sh) // bh[k, 0, 0]
        sx = (uu * sw) // bw[k, 0, 0]
        cy, cx = bx[k, 1] + vv, bx[k, 0] + uu
        canvas[s[k], cy, cx] = images[src[s][k], sy, sx]
        masks[s[k], cy, cx] = 1 + labels[src[s][k]]
    counts = placed.sum(1)
    return dict(images=canvas, masks=masks, boxes=boxes[placed].astype(np.float32),
                labels=labels[source[placed]], offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


class SceneDataset:
    """Scenes in memory, indexable: ``ds[i]`` -> (image uint8 (S, S, 3), target dict with
    boxes float32 (k, 4) xyxy, labels int64 (k,), mask uint8 (S, S)).

    Attributes: images, masks, boxes, labels, offsets (as returned by ``make_scenes``) and
    ``classes``, the class names (index = label).
    """

    def __init__(self, arrays, classes):
        self.images, self.masks = arrays["images"], arrays["masks"]
        self.boxes, self.labels, self.offsets = arrays["boxes"], arrays["labels"], arrays["offsets"]
        self.classes = list(classes)
        if len(self.offsets) != len(self.images) + 1 or self.offsets[-1] != len(self.boxes):
            raise ValueError("scene arrays disagree: offsets must have one entry per scene plus one "
                             "and end at the number of boxes")

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def size(self):
        return self.images.shape[1]

    def __len__(self):
        return len(self.images)

    def target(self, i):
        a, b = self.offsets[i], self.offsets[i + 1]
        return dict(boxes=self.boxes[a:b], labels=self.labels[a:b], mask=self.masks[i])

    def __getitem__(self, i):
        return self.images[i], self.target(i)

    def batch(self, idx, flip=None):
        """Images as normalised float32 (B, 3, S, S) and their targets (a list of dicts);
        ``flip`` (B,) bool mirrors those scenes left-right (boxes and masks too)."""
        idx = np.asarray(idx)
        imgs, masks = self.images[idx], self.masks[idx]
        targets = [self.target(i) for i in idx]
        if flip is not None and flip.any():
            imgs, masks = imgs.copy(), masks.copy()
            imgs[flip], masks[flip] = imgs[flip, :, ::-1], masks[flip, :, ::-1]
            for t, f in zip(targets, flip):
                if f:
                    b = t["boxes"].copy()
                    b[:, [0, 2]] = self.size - t["boxes"][:, [2, 0]]
                    t["boxes"], t["mask"] = b, t["mask"][:, ::-1]
        return normalize(imgs), targets

    def save(self, path):
        """Write the arrays and class names to ``path`` (.npz) through ``atomic_open``."""
        with atomic_open(path) as f:
            np.savez_compressed(f, images=self.images, masks=self.masks, boxes=self.boxes, labels=self.labels,
                                offsets=self.offsets, classes=np.array(self.classes, dtype=str))

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("images", "masks", "boxes", "labels", "offsets")}
            return cls(arrays, [str(c) for c in z["classes"]])

    def __repr__(self):
        return f"SceneDataset(n={len(self)}, size={self.size}, objects={len(self.boxes)}, classes={self.num_classes})"


def normalize(images):
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W), each channel standardised with CIFAR's
    mean and std."""
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def scene_splits(data, n_train=8000, n_test=1000, seed=0, classes=None, cache_dir=None, **options):
    """Train and test ``SceneDataset``s from CIFAR-10 at ``data`` (any source
    ``tinyvision.data.CIFAR10`` reads): train scenes from the train split, test scenes from the
    test split (seeds ``seed`` and ``seed + 1``). ``classes``: CIFAR class ids to use
    (relabelled 0..k-1 in the order given; default all ten). ``options`` go to ``make_scenes``. Cached
    under ``cache_dir`` (default: a ``scenes`` folder beside CIFAR's own cache) by a key made
    of the arguments and the source file's name, size and modification time."""
    from ..data.cifar import CLASSES, _cache_path, load_cifar10, locate
    _, path = locate(data)
    st = os.stat(path)
    key = json.dumps(dict(src=os.path.abspath(path), size=st.st_size, mtime=int(st.st_mtime), n_train=n_train,
                          n_test=n_test, seed=seed, classes=classes, **options), sort_keys=True)
    if cache_dir is None:
        cifar_cache = _cache_path(path, None)
        cache_dir = os.path.join(os.path.dirname(cifar_cache), "scenes") if cifar_cache else None
    names = {}
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        names = {s: os.path.join(cache_dir, f"scenes-{s}-{digest}.npz") for s in ("train", "test")}
        if all(os.path.exists(p) for p in names.values()):
            return SceneDataset.load(names["train"]), SceneDataset.load(names["test"])
    cifar = load_cifar10(data)
    ids = list(range(len(CLASSES))) if classes is None else [int(c) for c in classes]
    relabel = np.full(len(CLASSES), -1)
    relabel[ids] = np.arange(len(ids))
    out = []
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        x, y = cifar[split]
        keep = relabel[y] >= 0
        ds = SceneDataset(make_scenes(x[keep], relabel[y[keep]], n, seed=s, **options), [CLASSES[i] for i in ids])
        if names:
            ds.save(names[split])
        out.append(ds)
    return tuple(out)
