"""Helpers the chapter notebooks share: where the data comes from, a short training loop
assembled from tinyvision's own pieces, and a demo scene for the classical-vision chapter.

Nothing here re-implements the library: the loop runs ``tinyvision.train.train_step`` (the
step every loop of the library takes) on ``classification_loss``, with the recipe's optimizer,
schedule and transforms (``tinyvision.recipes``) and ``tinyvision.data.DataLoader``.
What it adds is an in-memory data set, so the same notebook runs on real CIFAR-10 (when
``datasets/cache/cifar10-jpeg.tar.gz`` or ``$TINYVISION_DATA`` exists) and on a small
synthetic stand-in (continuous integration has no data).
"""
import os
import time
from dataclasses import dataclass

import numpy as np

import tinyvision as tv
from tinyvision import data, metrics
from tinyvision.evaluate import predict_logits
from tinyvision.progress import read_losses
from tinyvision.recipes import TrainConfig, build_optimizer, build_scheduler, build_transform
from tinyvision.train import classification_loss, train_step

QUICK = os.environ.get("TINYVISION_QUICK", "0") == "1"
FULL = os.environ.get("TINYVISION_FULL", "0") == "1" and not QUICK
MODE = "quick" if QUICK else "full" if FULL else "default"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "results", "chapters")
CIFAR_FILE = os.path.join("datasets", "cache", "cifar10-jpeg.tar.gz")
SYNTHETIC_CLASSES = [f"stripes {a}°" for a in range(0, 180, 18)]


# ---------------------------------------------------------------- run modes
# default: what a student runs in one sitting (each chapter at most 20 minutes on a 2-core CPU,
# on CIFAR-10 when it is on disk); full (TINYVISION_FULL=1): the long experiments, which also
# record their results for the default mode to show; quick (TINYVISION_QUICK=1): CI's smoke
# test on tiny synthetic subsets, whose numbers measure nothing.
def by_mode(default, quick, full=None):
    """The setting for this run's mode (``full`` None: the default's)."""
    return {"default": default, "quick": quick, "full": default if full is None else full}[MODE]


def say(*parts):
    """``print``, marked in QUICK mode so that no smoke-test number passes for a measurement."""
    print(*(("[smoke test, not a measurement]",) if QUICK else ()), *parts, flush=True)


def record(name, results, command):
    """Keep a full-mode experiment's ``results`` (JSON-able) in docs/results/chapters/NAME.json
    with the machine, date and the ``command`` that reproduces them; only in full mode."""
    if not FULL:
        return None
    import datetime
    from _execute import machine          # the line an executed copy's stamp gives
    from tinyvision.fileio import write_json
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    write_json(path, {"machine": machine(),
                      "date": datetime.date.today().isoformat(), "command": command, "results": results})
    return path


def recorded(name):
    """The results a full run kept (``record``): a dict with machine, date, command and results;
    None when there are none yet."""
    import json
    path = os.path.join(RESULTS, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def recorded_label(rec):
    """A one-line caption for a recorded result: where, when and how it was measured."""
    return f"recorded {rec['date']} on {rec['machine']}; reproduce: {rec['command']}"


def noise(a, b, n_test, points=False):
    """How large a difference between the mean accuracies of runs ``a`` and ``b`` (k values each,
    one per seed) must be to count: two standard errors of a difference of two means of k
    accuracies p measured on ``n_test`` images, 2 sqrt(2 p (1 - p) / (k n_test)), the test set's
    noise, and with several seeds at least the larger seed range of the two, the training's.
    Returns (noise, a few words saying which, in points of accuracy with ``points``)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    fmt = (lambda v: f"{v * 100:.1f} points") if points else (lambda v: f"{v:.3f}")
    k, p = min(len(a), len(b)), (a.mean() + b.mean()) / 2
    se2 = 2 * np.sqrt(2 * p * (1 - p) / (k * n_test))
    if k > 1:
        spread = max(np.ptp(a), np.ptp(b))
        return max(spread, se2), f"seed spread {fmt(spread)} over {k} seeds, two standard errors {fmt(se2)}"
    return se2, f"one seed; two standard errors on {n_test} test images {fmt(se2)}"


# ---------------------------------------------------------------- data
def find_cifar():
    """The CIFAR-10 source: $TINYVISION_DATA, else datasets/cache/cifar10-jpeg.tar.gz in this
    folder or one above it; None when absent (or when $TINYVISION_SYNTHETIC=1)."""
    if os.environ.get("TINYVISION_SYNTHETIC", "0") == "1":
        return None
    env = os.environ.get("TINYVISION_DATA")
    if env:
        return env if os.path.exists(env) else None
    here = os.path.abspath(os.getcwd())
    for _ in range(4):
        candidate = os.path.join(here, CIFAR_FILE)
        if os.path.exists(candidate):
            return candidate
        here = os.path.dirname(here)
    return None


class ArrayDataset:
    """Images uint8 (N, H, W, C) and integer labels in memory; the DataLoader's fast path."""

    def __init__(self, images, targets, classes):
        self.data, self.targets, self.classes = images, np.asarray(targets, np.int64), list(classes)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.data[i], int(self.targets[i])


@dataclass
class Split:
    train: ArrayDataset
    test: ArrayDataset
    source: str          # 'CIFAR-10 (JPEG copy)' or 'synthetic'

    @property
    def classes(self):
        return self.train.classes

    @property
    def real(self):
        return self.source != "synthetic"


def synthetic_images(n_per_class, seed=0, size=32):
    """A learnable stand-in for CIFAR-10: class c is a sinusoidal grating at 18c degrees with
    a random frequency, phase, tint and brightness, under a random blob and pixel noise."""
    rng = np.random.default_rng(seed)
    n = 10 * n_per_class
    labels = np.repeat(np.arange(10), n_per_class)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = labels * np.pi / 10 + rng.normal(0, 0.05, n)
    freq = rng.uniform(3, 6, n) * 2 * np.pi
    phase = rng.uniform(0, 2 * np.pi, n)
    u = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
    wave = 0.5 + 0.5 * np.sin(freq[:, None, None] * u + phase[:, None, None])      # (n, H, W)
    cy, cx = rng.uniform(0.2, 0.8, (2, n))
    blob = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 0.02)
    tint = rng.uniform(0.3, 1.0, (n, 1, 1, 3))
    img = wave[..., None] * tint + 0.4 * blob[..., None] * rng.uniform(0, 1, (n, 1, 1, 3))
    img = img * rng.uniform(0.6, 1.0, (n, 1, 1, 1)) + rng.normal(0, 0.08, img.shape)
    order = rng.permutation(n)
    return (np.clip(img * 255, 0, 255).astype(np.uint8))[order], labels[order]


def load_data(train_per_class, test_per_class, seed=0):
    """``train_per_class`` training and ``test_per_class`` test images of each class, from
    CIFAR-10 when it is on disk, else from ``synthetic_images``."""
    path = find_cifar()
    if path is not None:
        splits = data.load_cifar10(path)
        out = []
        for name, k in (("train", train_per_class), ("test", test_per_class)):
            x, y = splits[name]
            idx = data.per_class_subset(y, k, seed=seed)
            out.append(ArrayDataset(x[idx], y[idx], data.CLASSES))
        return Split(out[0], out[1], "CIFAR-10 (JPEG copy)")
    x, y = synthetic_images(train_per_class + test_per_class, seed=seed)
    test_idx = data.per_class_subset(y, test_per_class)
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return Split(ArrayDataset(x[train_idx], y[train_idx], SYNTHETIC_CLASSES),
                 ArrayDataset(x[test_idx], y[test_idx], SYNTHETIC_CLASSES), "synthetic")


def describe(split):
    kind = "real CIFAR-10 images" if split.real else (
        "the SYNTHETIC stand-in (CIFAR-10 was not found, e.g. in CI): numbers below say nothing "
        "about CIFAR-10")
    print(f"data: {split.source}: {len(split.train)} training and {len(split.test)} test images, "
          f"{len(split.classes)} classes; using {kind}")


def normalised(dataset, mean=data.CIFAR10_MEAN, std=data.CIFAR10_STD):
    """A whole data set as one normalised float32 (N, 3, H, W) array."""
    return build_transform("none", mean, std)(dataset.data, None)


# ---------------------------------------------------------------- training
def _mean_std(model):
    cfg = getattr(model, "default_cfg", None) or {}
    return cfg.get("mean", data.CIFAR10_MEAN), cfg.get("std", data.CIFAR10_STD)


def evaluate(model, dataset, batch_size=500):
    """Logits (N, K) and targets (N,) of ``dataset`` in evaluation mode."""
    mean, std = _mean_std(model)
    loader = data.DataLoader(dataset, batch_size=batch_size, transform=build_transform("none", mean, std))
    return predict_logits(model, loader)


def fit(model, split, recipe="resnet_sgd", epochs=1, time_budget=None, sampler=None, class_weight=None,
        seed=0, verbose=True, **overrides):
    """Train ``model`` on ``split.train`` with one of ``tinyvision.recipes.RECIPES`` (fields of
    ``TrainConfig`` such as lr, batch_size, augment, schedule, weight_decay, label_smoothing,
    clip_grad override it) and evaluate on ``split.test`` after every epoch.

    ``time_budget`` (seconds) stops training once that much wall time has gone, even inside an
    epoch (the schedule is still laid out for ``epochs``). Returns a list of per-epoch dicts:
    epoch, train_loss, train_acc, test_acc, wall_time (training only), images_per_s.
    """
    cfg = TrainConfig(recipe=recipe, epochs=epochs, seed=seed, **overrides).resolved()
    mean, std = _mean_std(model)
    loader = data.DataLoader(split.train, batch_size=cfg.batch_size, shuffle=sampler is None,
                             drop_last=True, seed=seed, sampler=sampler,
                             transform=build_transform(cfg.augment, mean, std))
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, len(loader))
    weight = None if class_weight is None else np.asarray(class_weight, np.float32)

    def objective(x, y):
        return classification_loss(model, x, y, label_smoothing=cfg.label_smoothing, weight=weight)
    history, wall, images = [], 0.0, 0
    for epoch in range(epochs):
        model.train()
        # loss and hit count stay on the device until the epoch ends: reading them every step
        # would synchronise a GPU (and copy the logits to the host) at every batch
        losses, hits, seen, start = [], [], 0, time.perf_counter()
        for x, y in loader:
            loss, correct = train_step(model, optimizer, objective, x, y, cfg.clip_grad, scheduler)
            losses.append(loss)
            hits.append(correct)
            seen += len(y)
            if time_budget is not None and wall + time.perf_counter() - start > time_budget:
                break
        losses = read_losses(losses, epoch + 1, len(losses), "lower the learning rate or clip gradients")
        correct = sum(int(h) for h in hits)
        wall += time.perf_counter() - start
        images += seen
        logits, targets = evaluate(model, split.test)
        row = dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), train_acc=correct / max(seen, 1),
                   test_acc=metrics.accuracy(logits, targets), wall_time=wall, images_per_s=images / wall)
        history.append(row)
        if verbose:
            print(f"  epoch {row['epoch']}: loss {row['train_loss']:.3f}  train acc {row['train_acc']:.3f}  "
                  f"test acc {row['test_acc']:.3f}  ({row['images_per_s']:.0f} img/s)", flush=True)
        if time_budget is not None and wall >= time_budget:
            break
    return history


def params_count(model):
    return sum(p.size for p in model.parameters())


# ---------------------------------------------------------------- a scene for chapter 1
def demo_scene(size=96, seed=0):
    """A grey-level test scene in [0, 1]: a shaded background, a bright square, a dark disc,
    a triangle and a small cross (the template of the matching demo), plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 0.25 + 0.2 * xx / size
    img[12:40, 10:38] = 0.85                                               # square
    img[(yy - 66) ** 2 + (xx - 28) ** 2 < 14 ** 2] = 0.05                  # disc
    tri = (yy > 14) & (yy < 44) & (np.abs(xx - 70) < (yy - 14) * 0.6)
    img[tri] = 0.65                                                        # triangle
    img[62:80, 68:72] = 0.95                                               # cross
    img[69:73, 61:79] = 0.95
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


# ---------------------------------------------------------------- small models and class subsets
def cifar_resnet(depth, widths=(16, 32, 64), plain=False, shortcut="A", num_classes=10):
    """A CIFAR ResNet of depth 6n + 2 (n BasicBlocks per stage), optionally narrower than the
    paper's (16, 32, 64) or without shortcuts: ``tv.models.ResNet`` with the CIFAR stem."""
    n = (depth - 2) // 6
    if 6 * n + 2 != depth:
        raise ValueError(f"CIFAR ResNets have depth 6n + 2, not {depth}")
    return tv.models.ResNet(tv.models.BasicBlock, (n, n, n), widths, num_classes=num_classes, stem="cifar",
                            shortcut=shortcut, plain=plain)


def select_classes(dataset, classes, per_class=None):
    """The images of ``classes`` (relabelled 0..len-1), optionally only the first ``per_class``."""
    keep = np.flatnonzero(np.isin(dataset.targets, classes))
    if per_class is not None:
        keep = keep[data.per_class_subset(dataset.targets[keep], per_class)]
    remap = {c: i for i, c in enumerate(classes)}
    return ArrayDataset(dataset.data[keep], [remap[int(t)] for t in dataset.targets[keep]],
                        [dataset.classes[c] for c in classes])


def subset(dataset, indices):
    """``dataset`` restricted to ``indices`` (same classes)."""
    indices = np.asarray(indices)
    return ArrayDataset(dataset.data[indices], dataset.targets[indices], dataset.classes)
