"""Subsets and sampling: per-class subsets, class imbalance (article section 6.1)."""
import numpy as np


class Subset:
    """The items ``indices`` of ``dataset``, keeping the fast array path (``data``/``targets``)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.classes = getattr(dataset, "classes", None)
        if hasattr(dataset, "data"):
            self.data = dataset.data[self.indices]
        self.targets = np.asarray(dataset.targets)[self.indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


def per_class_subset(targets, k, seed=None):
    """Indices of k items per class: the first k of each (seed None) or k drawn at random."""
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed) if seed is not None else None
    picked = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        picked.append(rng.choice(idx, min(k, len(idx)), replace=False) if rng is not None else idx[:k])
    return np.sort(np.concatenate(picked))


def class_weights(targets, num_classes):
    """Inverse-frequency class weights w_c = (N / (C n_c)), normalised to mean 1 over the
    classes present: a rare class's errors weigh more in a weighted cross-entropy."""
    counts = np.bincount(np.asarray(targets), minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return (w / w[counts > 0].mean()).astype(np.float32)


def make_imbalanced(targets, imbalance_factor=10.0, seed=0):
    """Indices of a long-tailed subset: class c keeps n_c = n_max * factor^(-c / (C - 1)) items
    (exponential profile, the head class keeps all, the tail 1/factor of them)."""
    targets = np.asarray(targets)
    classes = np.unique(targets)
    n_max = min(np.sum(targets == c) for c in classes)
    rng = np.random.default_rng(seed)
    keep = []
    for i, c in enumerate(classes):
        n_c = max(1, int(round(n_max * imbalance_factor ** (-i / max(len(classes) - 1, 1)))))
        keep.append(rng.choice(np.flatnonzero(targets == c), n_c, replace=False))
    return np.sort(np.concatenate(keep))


class WeightedRandomSampler:
    """Draws ``num_samples`` indices with probability proportional to ``weights`` (one weight
    per item; for resampling classes, weight each item by its class's inverse frequency).
    Iterating gives one epoch's indices; each epoch draws anew from the seeded stream."""

    def __init__(self, weights, num_samples, replacement=True, seed=None):
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.weights.ndim != 1 or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise ValueError("weights must be a 1-D array of non-negative numbers with a positive sum")
        self.num_samples, self.replacement = int(num_samples), replacement
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        p = self.weights / self.weights.sum()
        return iter(self.rng.choice(len(p), self.num_samples, replace=self.replacement, p=p))
