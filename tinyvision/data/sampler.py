"""Subsets, splits and samplers: per-class subsets, class imbalance (article section 6.1).

A sampler is an iterable of dataset indices, one pass per epoch, with ``len`` the number of
indices it yields. Samplers here draw from a generator seeded with (seed, epoch): the
DataLoader calls ``set_epoch(e)`` before epoch e, so epoch e's indices are the same in a run
and in its resumed copy, whatever happened before.
"""
import numpy as np


def _targets_of(dataset_or_targets):
    """The int64 label array of a data set (its ``targets``) or of an array of labels."""
    targets = getattr(dataset_or_targets, "targets", dataset_or_targets)
    targets = np.asarray(targets)
    if targets.ndim != 1 or (targets.size and targets.dtype.kind not in "iu"):
        raise ValueError(f"expected integer class labels of shape (N,), got {targets.dtype} {targets.shape}")
    return targets.astype(np.int64, copy=False)


class Subset:
    """The items ``indices`` of ``dataset``, keeping the DataLoader's fast array path: when the
    data set has ``data`` and ``targets`` arrays, so does the subset (gathered once)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.classes = getattr(dataset, "classes", None)
        if hasattr(dataset, "data"):
            self.data = dataset.data[self.indices]
        if hasattr(dataset, "targets"):
            self.targets = np.asarray(dataset.targets)[self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


def per_class_subset(targets, k, seed=None):
    """Indices of k items per class (all of a class that has fewer): the first k of each class
    in data set order (seed None), or k drawn without replacement. Returned sorted."""
    targets = _targets_of(targets)
    rng = np.random.default_rng(seed) if seed is not None else None
    picked = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        picked.append(rng.choice(idx, min(k, len(idx)), replace=False) if rng is not None else idx[:k])
    return np.sort(np.concatenate(picked))


def stratified_split(targets, fraction, seed=0):
    """Split indices into (rest, held_out) with ``fraction`` of every class held out (rounded,
    at least one item of a class with two or more), e.g. a validation set carved from the
    training set with the same class proportions. Both index arrays are sorted."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    targets = _targets_of(targets)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        n = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        held.append(idx[:n])
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(targets)), held), held


def class_weights(targets, num_classes):
    """Inverse-frequency class weights for a weighted loss.

    w_c = N / (C n_c), then rescaled so that the mean over the classes present is 1; a class
    with no items gets weight 0 (it cannot occur as a target anyway).

    Inputs:
        targets: int labels (N,) or a data set with ``targets``.
        num_classes: C.
    Returns:
        float32 (C,).
    """
    counts = np.bincount(_targets_of(targets), minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return (w / w[counts > 0].mean()).astype(np.float32)


def make_imbalanced(dataset_or_targets, imbalance_factor=10.0, seed=0, ratios=None):
    """Indices of a long-tailed subset (sorted).

    By default an exponential profile: with the classes in label order c = 0..C-1,
        n_c = n_max * factor^(-c / (C - 1)),   n_max = the smallest class count,
    so the head class keeps n_max items and the tail n_max / factor (at least 1). With
    ``ratios`` (one fraction in [0, 1] per class) class c keeps round(ratios[c] * n_c0) of
    its own n_c0 items instead. Kept items are drawn without replacement with ``seed``.
    """
    targets = _targets_of(dataset_or_targets)
    classes = np.unique(targets)
    rng = np.random.default_rng(seed)
    if ratios is not None:
        ratios = np.asarray(ratios, dtype=np.float64)
        if ratios.shape != (classes.max() + 1,) or (ratios < 0).any() or (ratios > 1).any():
            raise ValueError(f"ratios must hold one fraction in [0, 1] per class ({classes.max() + 1}), "
                             f"got {ratios.tolist()}")
    n_max = min(np.sum(targets == c) for c in classes)
    keep = []
    for i, c in enumerate(classes):
        idx = np.flatnonzero(targets == c)
        if ratios is not None:
            n_c = int(round(ratios[c] * len(idx)))
        else:
            n_c = max(1, int(round(n_max * imbalance_factor ** (-i / max(len(classes) - 1, 1)))))
        keep.append(rng.choice(idx, n_c, replace=False))
    return np.sort(np.concatenate(keep))


class _EpochSeeded:
    """Base for samplers drawing epoch e's indices from a generator seeded with (seed, e).
    Each pass moves on to the next epoch, so iterating without a DataLoader also draws anew."""

    def __init__(self, seed):
        self.seed = int(np.random.SeedSequence().entropy % 2**62) if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def _rng(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return rng


class SequentialSampler:
    """0, 1, ..., n-1 every epoch."""

    def __init__(self, n):
        self.n = int(n)

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(range(self.n))


class RandomSampler(_EpochSeeded):
    """A random permutation of 0..n-1 per epoch (or ``num_samples`` draws with replacement)."""

    def __init__(self, n, replacement=False, num_samples=None, seed=None):
        super().__init__(seed)
        self.n, self.replacement = int(n), replacement
        self.num_samples = self.n if num_samples is None else int(num_samples)
        if not replacement and self.num_samples > self.n:
            raise ValueError(f"cannot draw {self.num_samples} of {self.n} items without replacement")

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        rng = self._rng()
        if self.replacement:
            return iter(rng.integers(0, self.n, self.num_samples).tolist())
        return iter(rng.permutation(self.n)[:self.num_samples].tolist())


class WeightedRandomSampler(_EpochSeeded):
    """Draws ``num_samples`` indices with P(i) = w_i / sum_j w_j (one weight per item; to
    balance classes, weight each item by its class's inverse frequency, e.g.
    ``class_weights(targets, C)[targets]``)."""

    def __init__(self, weights, num_samples, replacement=True, seed=None):
        super().__init__(seed)
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.weights.ndim != 1 or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise ValueError("weights must be a 1-D array of non-negative numbers with a positive sum")
        if not replacement and num_samples > np.count_nonzero(self.weights):
            raise ValueError(f"cannot draw {num_samples} items without replacement from "
                             f"{np.count_nonzero(self.weights)} with non-zero weight")
        self.num_samples, self.replacement = int(num_samples), replacement

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        p = self.weights / self.weights.sum()
        return iter(self._rng().choice(len(p), self.num_samples, replace=self.replacement, p=p).tolist())
