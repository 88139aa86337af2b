"""Class splits and label budgets for transfer experiments.

Supervised transfer in the article's sense: learn on some classes (the *source* task), then
adapt to other classes (the *target* task). On CIFAR-10 that is e.g. classes 0-4 (airplane,
automobile, bird, cat, deer) -> classes 5-9 (dog, frog, horse, ship, truck), each side a
5-way problem with its labels renumbered 0..4.

A label budget ("1% of the labels") keeps a stratified fraction of the training images of
each class, so a small budget still sees every class.
"""
import numpy as np


def parse_classes(spec, num_classes=10):
    """Class ids from a command-line spec: '5-9' (a range, inclusive), '0,2,4', or a mix
    ('0-2,7'). Returns a list of ints in the order written; ValueError naming what is wrong
    for a malformed part, a reversed range, ids outside 0..num_classes-1, or a repeated id."""
    ids = []
    for part in str(spec).split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise ValueError(f"cannot read {part.strip()!r} of the class list {spec!r}: write ids and ranges "
                             f"like '5-9' or '0,2,4'")
        lo, hi = int(bounds[0]), int(bounds[-1])
        if hi < lo:
            raise ValueError(f"the range {part.strip()!r} of the class list {spec!r} is reversed; write {hi}-{lo}")
        ids.extend(range(lo, hi + 1))
    outside = [c for c in ids if c >= num_classes]
    if outside:
        raise ValueError(f"the class list {spec!r} names {', '.join(map(str, outside))}: class ids are "
                         f"0..{num_classes - 1}")
    repeated = sorted({c for c in ids if ids.count(c) > 1})
    if repeated:
        raise ValueError(f"the class list {spec!r} names {', '.join(map(str, repeated))} more than once")
    return ids


class ClassSplit:
    """The images of ``classes`` (original ids, in the order given) of ``dataset``, with
    targets renumbered: an image of class ``classes[j]`` gets label j.

    Keeps the DataLoader's fast path: ``data`` (n, H, W, C) and ``targets`` (n,) int64 arrays,
    and ``classes`` (the names of the kept classes where the dataset has names).
    ``indices`` are the kept positions in ``dataset``.
    """

    def __init__(self, dataset, classes):
        targets = np.asarray(dataset.targets)
        self.class_ids = [int(c) for c in classes]
        relabel = np.full(max(int(targets.max()), max(self.class_ids)) + 1, -1, dtype=np.int64)
        relabel[self.class_ids] = np.arange(len(self.class_ids))
        self.dataset = dataset
        self.indices = np.flatnonzero(relabel[targets] >= 0)
        self.targets = relabel[targets[self.indices]]
        self.data = dataset.data[self.indices]
        names = getattr(dataset, "classes", None)
        self.classes = [names[c] for c in self.class_ids] if names is not None else [str(c) for c in self.class_ids]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.data[i], int(self.targets[i])

    def __repr__(self):
        return f"ClassSplit({len(self)} images of classes {self.class_ids} -> 0..{len(self.class_ids) - 1})"


def label_fraction_indices(targets, fraction, seed=0):
    """Indices of a stratified random ``fraction`` of the items (at least one per class):
    class c keeps max(1, round(fraction * n_c)) of its n_c items. Sorted."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the label fraction must be in (0, 1], got {fraction}")
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        keep.append(rng.choice(idx, max(1, int(round(fraction * len(idx)))), replace=False))
    return np.sort(np.concatenate(keep))
