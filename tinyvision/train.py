"""Training and evaluation: named recipes, a readable loop, checkpoints and exact resume.

The loop is the one every deep-learning course draws:

    for each epoch:
        for each batch (x, y):
            loss = cross_entropy(model(x), y)      forward
            loss.backward()                         backward: dL/dtheta
            clip_grad_norm_(params, c)              optional, the article's formula
            optimizer.step(); scheduler.step()      theta <- theta - lr * update
        evaluate on the test split, log, checkpoint

Everything a run needs to continue bit for bit is in its checkpoint: model, optimizer and
scheduler state, the data loader's position (epoch and batches used; each batch's order and
augmentation come from seeded generators), the model's random generator (dropout, stochastic
depth), and the step within the epoch. Ctrl-C lets the current step finish, writes such a
checkpoint and stops; ``--resume RUN_DIR`` continues from it. A second Ctrl-C stops at once,
without saving: a checkpoint is only ever taken between two optimizer steps.

The run folder is claimed and locked before any data loads (``rundir``): a new run never writes
into another run's folder, and two processes never write one.
"""
import csv
import dataclasses
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend, data, metrics, models, optim, rundir
from .errors import RunDirError
from .fileio import atomic_open, write_json
from .ops import cross_entropy
from .serialization import classifier_checkpoint, load, save
from .tensor import Tensor, no_grad

# Recipes the article suggests (section 5): ResNet with SGD + momentum + weight decay and a
# decaying schedule; ViT with AdamW, warmup + cosine decay and label smoothing. A model's
# default_cfg names its recipe.
RECIPES = {
    "resnet_sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                       schedule="onecycle", warmup_epochs=0, label_smoothing=0.0, clip_grad=0.0,
                       batch_size=128, augment="crop_flip", epochs=20, eval_every=1),
    "vit_adamw": dict(optimizer="adamw", lr=1e-3, momentum=0.9, nesterov=False, weight_decay=0.05,
                      schedule="cosine", warmup_epochs=3, label_smoothing=0.1, clip_grad=1.0,
                      batch_size=128, augment="crop_flip", epochs=20, eval_every=1),
}
# Full recipes also name the model and the run. resnet20_cpu_2h: the best CPU result in two hours
# (docs/results.md, "88% in two hours"): 18 epochs on 24-pixel crops, 12 on whole images, a test
# every 6 epochs, then one test with flip + shift-2 TTA (10 views).
RECIPES["resnet20_cpu_2h"] = dict(RECIPES["resnet_sgd"], model="resnet20", epochs=30, progressive=[[24, 18]],
                                  eval_every=6, batch_size=512, lr=0.4, label_smoothing=0.1, final_tta=[True, 2])


@dataclass
class TrainConfig:
    """Every option of a run; fields left at None come from the recipe (``recipe``, else the
    model's own), and ``model`` from a full recipe, else resnet20."""
    model: str = None
    data: str = "datasets/cache/cifar10-jpeg.tar.gz"
    out: str = None                # None: a fresh runs/MODEL, runs/MODEL-2, ... (rundir.claim)
    epochs: int = None             # ResNet-20: 3.4 min an epoch on a 2-core CPU
    recipe: str = None
    optimizer: str = None          # 'sgd' | 'adam' | 'adamw'
    lr: float = None
    momentum: float = None
    nesterov: bool = None
    weight_decay: float = None
    schedule: str = None           # 'onecycle' | 'cosine' | 'step' | 'constant'
    warmup_epochs: int = None
    label_smoothing: float = None
    clip_grad: float = None        # max global gradient norm; 0 = no clipping
    batch_size: int = None
    augment: str = None            # 'none' | 'flip' | 'crop_flip' | 'crop_flip_cutout'
    device: str = "cpu"
    seed: int = 0
    subset: int = None             # train on the first K images of each class
    test_subset: int = None        # evaluate on K images of each class
    eval_batch_size: int = 500
    tta_flip: bool = False         # average predictions over the image and its mirror
    tta_shift: int = 0             # ... and over the image moved this many pixels each way
    eval_every: int = None         # test every K epochs and after the last; the others get no test numbers
    final_tta: list = None         # [flip, shift]: after the last epoch, test once more with this TTA
    progressive: list = None       # [(size, until_epoch), ...]: train on size x size crops through that epoch
    bn_recalibration: int = 5000   # whole images re-estimating batch norm before a crop epoch's test (0: off)
    prefetch: int = 2
    log_interval: int = 20
    model_kwargs: dict = field(default_factory=dict)

    def resolved(self):
        """A copy with the recipe's values filled in where this config says None; an InputError
        naming the flag (``--epochs: expected ...``) for a value no run can use, before any data
        is read."""
        from .errors import InputError
        try:  # an unknown model: the registry's message lists close matches
            models.get_default_cfg(self.model or "resnet20")
        except KeyError as err:
            raise InputError(f"--model: {err.args[0]}") from None
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose from {sorted(RECIPES)}")
        recipe_name = self.recipe or models.get_default_cfg(self.model or "resnet20").get("recipe", "resnet_sgd")
        recipe = RECIPES[recipe_name]
        values = {k: (recipe[k] if v is None and k in recipe else v) for k, v in dataclasses.asdict(self).items()}
        values.update(recipe=recipe_name, model=values["model"] or "resnet20")
        if values["final_tta"] is not None:
            flip, shift = values["final_tta"]
            tta_offsets(shift)  # checked now, not after the last epoch
            values["final_tta"] = [bool(flip), shift]
        integer = lambda x: isinstance(x, int) and not isinstance(x, bool)  # noqa: E731
        number = lambda x: integer(x) or isinstance(x, float) and math.isfinite(x)  # noqa: E731
        epochs, side = values["epochs"], min(models.get_default_cfg(values["model"])["input_size"][1:])
        per_class = (lambda x: x is None or integer(x) and x >= 1, "a number of images per class >= 1")
        checks = {  # field: (accepts, what a run needs), in order: a bad value fails here, not mid-run
            "epochs": (lambda x: integer(x) and x >= 0, "an integer >= 0"),
            "subset": per_class, "test_subset": per_class,
            "warmup_epochs": (lambda x: integer(x) and x >= 0 and (not self.warmup_epochs or x < epochs),
                              f"an integer >= 0 and below --epochs ({epochs})"),
            "lr": (lambda x: number(x) and x > 0, "a number > 0"),
            "momentum": (lambda x: number(x) and 0 <= x < 1, "a number in [0, 1)"),
            "weight_decay": (lambda x: number(x) and x >= 0, "a number >= 0"),
            "label_smoothing": (lambda x: number(x) and 0 <= x < 1, "a number in [0, 1)"),
            "clip_grad": (lambda x: number(x) and x >= 0, "a max gradient norm >= 0 (0: off)"),
            "batch_size": (lambda x: integer(x) and x >= 1, "an integer >= 1"),
            "eval_every": (lambda x: integer(x) and x >= 1, "an integer >= 1"),
            "tta_shift": (lambda x: integer(x) and 0 <= x < side,
                          f"a whole number of pixels from 0 to {side - 1} ({values['model']} takes "
                          f"{side}x{side} images)"),
            "bn_recalibration": (lambda x: integer(x) and x >= 0, "a number of images >= 0"),
        }
        for name, (accepts, expected) in checks.items():
            if not accepts(values[name]):
                raise InputError(f"--{name.replace('_', '-')}: expected {expected}, got {values[name]!r}")
        values["progressive"] = check_progressive(values["progressive"], values["epochs"])
        return TrainConfig(**values)


def check_progressive(phases, epochs):
    """``phases`` as a list of [size, until_epoch] pairs of ints, or a ValueError that says what
    is wrong. The epochs must rise and the last phase must end before the last epoch, so that a
    run always finishes on whole images (the ones it is tested on)."""
    if not phases:
        return []
    try:
        phases = [[int(size), int(until)] for size, until in phases]
    except (TypeError, ValueError):
        raise ValueError(f"progressive: expected (size, until_epoch) pairs, got {phases!r}") from None
    ends = [until for _, until in phases]
    if any(size < 1 for size, _ in phases) or ends[0] < 1 or ends != sorted(set(ends)):
        raise ValueError(f"progressive: expected positive crop sizes and rising epochs, got {phases!r}")
    if ends[-1] >= epochs:
        raise ValueError(f"progressive: the last small-crop phase ends at epoch {ends[-1]}, but a run of "
                         f"{epochs} epochs must end on whole images: end it before epoch {epochs}")
    return phases


def build_transform(augment, mean, std, crop=None):
    """The batch transform for training ('augment') or evaluation ('none').

    ``crop``: train on random crop x crop windows of the unpadded images instead (progressive
    resizing), with the rest of the augmentation as ``augment`` says."""
    steps = [data.RandomCrop(crop)] if crop else []
    if augment in ("crop_flip", "crop_flip_cutout") and not crop:
        steps.append(data.RandomCrop(32, padding=4))
    if augment in ("flip", "crop_flip", "crop_flip_cutout"):
        steps.append(data.RandomHorizontalFlip())
    elif augment != "none":
        raise ValueError(f"unknown augmentation {augment!r}; choose none, flip, crop_flip, crop_flip_cutout")
    steps += [data.ToTensor(), data.Normalize(mean, std)]
    if augment == "crop_flip_cutout":
        steps.append(data.Cutout(8))
    return data.Compose(steps)


def build_optimizer(model, cfg):
    groups = optim.param_groups_weight_decay(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.optimizer == "adam":
        return optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd, adam or adamw")


def build_scheduler(optimizer, cfg, steps_per_epoch):
    """A schedule stepped once per iteration, so that warmup and one-cycle are smooth."""
    total = cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        return optim.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total)
    if cfg.schedule == "cosine":
        sched = optim.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    elif cfg.schedule == "step":  # /10 at 50% and 75% of training, as in the ResNet paper
        sched = optim.MultiStepLR(optimizer, milestones=[total // 2, total * 3 // 4], gamma=0.1)
    elif cfg.schedule == "constant":
        sched = optim.StepLR(optimizer, step_size=max(1, total), gamma=1.0)
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; choose onecycle, cosine, step, constant")
    return optim.LinearWarmup(sched, warmup_steps=warmup) if warmup else sched


def load_datasets(cfg):
    train_set = data.CIFAR10(cfg.data, train=True)
    test_set = data.CIFAR10(cfg.data, train=False)
    if cfg.subset:
        train_set = data.Subset(train_set, data.per_class_subset(train_set.targets, cfg.subset))
    if cfg.test_subset:
        test_set = data.Subset(test_set, data.per_class_subset(test_set.targets, cfg.test_subset))
    return train_set, test_set


def tta_offsets(shift):
    """The translations (dy, dx) that test-time augmentation averages over: the image itself
    and, for ``shift`` > 0, the image moved ``shift`` pixels down, up, right and left: the
    moves the training crop (``RandomCrop(32, padding=4)``) taught the model to ignore."""
    if not isinstance(shift, int) or isinstance(shift, bool) or shift < 0:
        raise ValueError(f"tta_shift: expected a whole number of pixels >= 0, got {shift!r}")
    return [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])


def translate(a, dy, dx, fill):
    """a (N, C, H, W) moved dy pixels down and dx right; the uncovered border takes ``fill``
    (per channel, shape (C, 1, 1)). out[..., i, j] = a[..., i - dy, j - dx] where in range."""
    xp = backend.array_module(a)
    N, C, H, W = a.shape
    if abs(dy) >= H or abs(dx) >= W:
        raise ValueError(f"cannot move a {H}x{W} image by ({dy}, {dx}) pixels")
    out = xp.empty_like(a)
    out[...] = fill
    out[:, :, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        a[:, :, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


@no_grad()
def predict_logits(model, loader, tta_flip=False, tta_shift=0):
    """Logits (N, K) and targets (N,) over a loader, in evaluation mode, as host arrays.

    Test-time augmentation averages the logits of several views of each image: with
    ``tta_flip`` the image and its mirror, with ``tta_shift`` = s also the image moved s pixels
    each way (``tta_offsets``; 5 positions, 10 views with the flip). A moved image's uncovered
    border is black, as in the training crop's zero padding, normalised as the loader
    normalises (the model's ``default_cfg`` statistics)."""
    offsets = tta_offsets(tta_shift)
    normalize = data.Normalize(model.default_cfg["mean"], model.default_cfg["std"]) if tta_shift else None
    was_training = model.training
    model.eval()
    outs, targets = [], []
    for x, y in loader:
        if tta_shift:  # a (C, 1, 1) black pixel, on x's device and in its dtype
            fill = normalize(backend.array_module(x.data).zeros((x.data.shape[1], 1, 1), x.data.dtype))
        total = None
        for dy, dx in offsets:
            view = x if (dy, dx) == (0, 0) else Tensor(translate(x.data, dy, dx, fill))
            for image in ((view, view[:, :, :, ::-1]) if tta_flip else (view,)):
                logits = model(image).data
                total = logits if total is None else total + logits
        outs.append(backend.to_numpy(total * (1.0 / (len(offsets) * (2 if tta_flip else 1)))))
        targets.append(backend.to_numpy(y.data))
    model.train(was_training)
    return np.concatenate(outs), np.concatenate(targets)


def read_losses(arrays, epoch, step, hint, what="loss"):
    """Loss scalars kept on the device -> Python floats, in one host read (on a GPU, one
    synchronisation per logging interval rather than per step). A non-finite value stops the
    run with a clear error: a diverged run would otherwise go on training on NaNs."""
    losses = [float(v) for v in arrays]
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"the {what} became {losses[-1]} at epoch {epoch}, step {step}; {hint}")
    return losses


def _say(line):
    """Print and flush, so that a log redirected to a file is current after every epoch."""
    print(line, flush=True)


class Trainer:
    """Trains ``cfg.model`` on CIFAR-10 as ``cfg`` says and writes the run to ``cfg.out``:
    metrics.csv, history.json, config.json, last.tvz and best.tvz checkpoints.

    The run folder is claimed first (``rundir.claim``): ``cfg.out`` None picks a fresh
    runs/MODEL[-N]; a folder holding another run is refused unless ``overwrite`` (that run's
    files are removed once this one is set up). Its lock is held from here to the end of
    ``fit`` (or ``close()``).

    ``progress`` turns the per-batch bar on or off; ``log`` (printed and flushed by default, None for
    silence) receives one summary line per epoch, so a run without the bar still shows in its log.
    ``model`` and ``datasets`` (train, test) replace the fresh ``cfg.model`` and the CIFAR-10
    splits of ``cfg.data`` (fine-tuning, pretext tasks, in-memory data); data sets need
    ``data``/``targets``/``classes`` like ``data.CIFAR10``. ``run_dir``: a ``rundir.RunDir``
    already held for ``cfg.out`` (``resume``).
    """

    def __init__(self, cfg, progress=True, log=_say, model=None, datasets=None, overwrite=False, run_dir=None):
        cfg = cfg.resolved()
        self.device = backend.check_device(cfg.device)
        self.progress = progress
        self.log = log or (lambda line: None)
        self.run_dir = run_dir or rundir.claim(cfg.out, cfg.model, overwrite, self.log)
        self.cfg = cfg = dataclasses.replace(cfg, out=self.run_dir.path)
        try:
            self._build(cfg, model, datasets)
        except BaseException:  # set-up failed: nothing of this run is left behind
            self.run_dir.release(discard=run_dir is None)
            raise
        self.run_dir.clear()

    def _build(self, cfg, model, datasets):
        backend.manual_seed(cfg.seed)
        self.train_set, self.test_set = datasets if datasets is not None else load_datasets(cfg)
        self.classes = list(self.train_set.classes)
        if model is None:
            model = models.create(cfg.model, num_classes=len(self.classes), **cfg.model_kwargs)
        self.model = model.to(self.device)
        train_transform, test_transform = self.build_transforms()
        self.image_side = min(self.train_set.data.shape[1:3])
        too_big = [size for size, _ in cfg.progressive if size >= self.image_side]
        if too_big:
            raise ValueError(f"progressive: crop sizes must be smaller than the {self.image_side}-pixel "
                             f"training images, got {too_big}")
        # one transform per crop size, picked at the start of each epoch (train_one_epoch); a
        # trainer that resizes its images refuses in crop_transform, before any probe runs
        self.train_transforms = {None: train_transform}
        for size, _ in cfg.progressive:
            if size not in self.train_transforms:
                self.train_transforms[size] = self.crop_transform(size)
                self._check_model_takes(size)
        self.train_loader = data.DataLoader(
            self.train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, seed=cfg.seed,
            transform=train_transform, device=self.device, prefetch=cfg.prefetch)
        self.test_loader = data.DataLoader(
            self.test_set, batch_size=cfg.eval_batch_size, transform=test_transform,
            device=self.device, prefetch=cfg.prefetch)
        if len(self.train_loader) == 0:
            raise ValueError(f"the training set has {len(self.train_set)} images, fewer than one batch "
                             f"of {cfg.batch_size}; lower --batch-size or use more images")
        self.optimizer, self.scheduler = self.build_optimization()
        self.epoch, self.step_in_epoch, self.history, self.best_acc = 0, 0, [], 0.0
        self.last_saved = None  # (epoch, step_in_epoch) of the newest last.tvz
        self._interrupted = False

    def close(self):
        """Release the run folder's lock (``fit`` does when it ends; also at exit)."""
        self.run_dir.release()

    def build_transforms(self):
        """(train, test) batch transforms: the recipe's augmentation, then the model's own
        normalisation (``default_cfg`` mean and std). Subclasses that feed other input sizes
        override this."""
        mean, std = self.model.default_cfg["mean"], self.model.default_cfg["std"]
        return build_transform(self.cfg.augment, mean, std), build_transform("none", mean, std)

    def crop_transform(self, size):
        """The training transform of a progressive-resizing phase: size x size random crops."""
        mean, std = self.model.default_cfg["mean"], self.model.default_cfg["std"]
        return build_transform(self.cfg.augment, mean, std, crop=size)

    def train_crop(self, epoch):
        """The crop size that 0-based ``epoch`` trains on, or None for whole images.

        Progressive resizing (``cfg.progressive``): a convolution's cost grows with the pixels,
        so a 24 x 24 crop costs about (24/32)^2 = 0.56 of a full CIFAR image (measured: 0.55 of
        the ResNet-20 step). The early epochs, at a high learning rate, learn coarse features
        that such crops show as well; the last epochs see whole images, the ones it is tested
        on. Plain crops, not shrunken images, keep the objects at the size the test shows
        them (no train/test scale gap to correct, as FixRes must; Touvron et al. 2019); the
        crop's random position translates the image, as the padded crop does later."""
        for size, until in self.cfg.progressive:
            if epoch < until:
                return size
        return None

    def _check_model_takes(self, size):
        """One image through the model at size x size, so that a model with a fixed input size
        (a ViT's position embeddings) refuses progressive resizing now, not at the first step."""
        probe = np.zeros((1, self.train_set.data.shape[3], size, size), np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                self.model(Tensor(probe, device=self.device))
        except ValueError as err:
            raise ValueError(f"progressive: {self.cfg.model} cannot train on {size}px crops ({err})") from None
        finally:
            self.model.train(was_training)

    def build_optimization(self):
        """(optimizer, scheduler) of the recipe for ``self.model``. Subclasses that change the
        parameter groups do it here: a schedule sets the groups' learning rates when it is
        built (one-cycle starts at max_lr / 25), so it must be built last, on the final groups."""
        optimizer = build_optimizer(self.model, self.cfg)
        return optimizer, build_scheduler(optimizer, self.cfg, len(self.train_loader))

    # ------------------------------------------------------------ checkpoints
    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loader": self.train_loader.state_dict(),   # mid-epoch: the batches already used
            "rng": backend.get_rng_state(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "history": self.history, "best_acc": self.best_acc,
            "config": dataclasses.asdict(self.cfg), "classes": self.classes,
        }

    def save_checkpoint(self, name):
        path = os.path.join(self.cfg.out, name)
        save(self.state_dict(), path)
        if name == "last.tvz":
            self.last_saved = (self.epoch, self.step_in_epoch)
        return path

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loader"])
        backend.set_rng_state(state["rng"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.history, self.best_acc = list(state["history"]), float(state["best_acc"])
        self.last_saved = (self.epoch, self.step_in_epoch)

    @classmethod
    def resume(cls, run_dir, progress=True, log=_say, **overrides):
        """Rebuild the trainer of ``run_dir`` from its last checkpoint, ready to continue; it
        writes into ``run_dir`` (not the folder the checkpoint names: a copied run stays apart)."""
        path = os.path.join(run_dir, "last.tvz")
        if not os.path.isfile(path):
            raise RunDirError(f"no checkpoint to resume in {run_dir}: it has no last.tvz")
        held = rundir.RunDir(os.fspath(run_dir), log=log or (lambda line: None))
        try:
            state = classifier_checkpoint(load(path), path)
            config = dict(state["config"], **overrides, out=held.path)
            trainer = cls(TrainConfig(**config), progress=progress, log=log, run_dir=held)
        except BaseException:
            held.release()
            raise
        trainer.load_state_dict(state)
        return trainer

    # ------------------------------------------------------------ the loop
    def compute_loss(self, x, y):
        """The training objective on one batch: (loss Tensor, number of correct predictions as
        a device array). Subclasses with another objective (pretext tasks) override this."""
        logits = self.model(x)
        loss = cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        return loss, (logits.data.argmax(axis=1) == y.data).sum()

    def train_step(self, x, y):
        """One optimisation step; returns the loss and the number of correct predictions as
        arrays on the device (reading them would synchronise a GPU)."""
        cfg = self.cfg
        loss, correct = self.compute_loss(x, y)
        self.optimizer.zero_grad()
        loss.backward()
        if cfg.clip_grad:
            optim.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        return loss.data, correct

    def train_one_epoch(self):
        cfg = self.cfg
        self.model.train()
        crop = self.train_crop(self.epoch)
        self.train_loader.transform = self.train_transforms[crop]  # before iter(): the prefetcher reads it
        batches = iter(self.train_loader)  # continues mid-epoch after a resume
        total = len(self.train_loader)
        desc = f"epoch {self.epoch + 1}/{cfg.epochs}" + (f" ({crop}px crops)" if crop else "")
        bar = _progress(total, desc, self.progress, initial=self.step_in_epoch)
        loss_sum = correct_sum = 0.0
        seen, start, pending = 0, time.perf_counter(), []
        for x, y in batches:
            loss, correct = self.train_step(x, y)
            pending.append((loss, correct, len(y)))
            self.step_in_epoch += 1
            if self._interrupted:  # Ctrl-C arrived during the step: stop between two steps
                raise _StopRequested
            if len(pending) == cfg.log_interval or self.step_in_epoch == total:
                losses = read_losses([l for l, _, _ in pending], self.epoch + 1, self.step_in_epoch,
                                     "lower --lr, or clip gradients with --clip-grad 1.0")
                loss_sum += sum(l * n for l, (_, _, n) in zip(losses, pending))
                correct_sum += sum(float(c) for _, c, _ in pending)
                seen += sum(n for _, _, n in pending)
                bar.update(len(pending))
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct_sum / seen:.3f}",
                                img_s=f"{seen / (time.perf_counter() - start):.0f}",
                                lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
                pending = []
        bar.close()
        elapsed = time.perf_counter() - start
        return dict(train_loss=loss_sum / max(seen, 1), train_acc=correct_sum / max(seen, 1),
                    epoch_time=elapsed, images_per_s=seen / max(elapsed, 1e-9), train_size=crop or self.image_side)

    def recalibrate_bn(self):
        """Re-estimate batch norm's running statistics on ``cfg.bn_recalibration`` whole training
        images (a fixed random sample, the test transform: no augmentation).

        After a crop epoch of progressive resizing the running statistics average the crops'
        batches, while the test shows whole images; tested as they are, the accuracy understates
        the weights (a ResNet-20 run's checkpoints after crop epochs 6, 12 and 18: 66.11 / 70.38 /
        72.59% as trained, 68.29 / 76.02 / 79.05% after this, about 10 s for 5000 images on 2 CPU
        cores), and best.tvz would be chosen on the understated numbers. Training is unchanged:
        in training mode batch norm normalises with each batch's own statistics."""
        loader = data.DataLoader(self.train_set, batch_size=self.cfg.eval_batch_size, shuffle=True,
                                 seed=self.cfg.seed, transform=self.test_loader.transform, device=self.device)
        optim.swa_utils.update_bn(loader, self.model, max_images=self.cfg.bn_recalibration)

    def evaluate(self, tta=None):
        """test_loss and test_acc with the test-time augmentation ``tta`` = [flip, shift]
        (default: the config's tta_flip and tta_shift)."""
        flip, shift = tta or (self.cfg.tta_flip, self.cfg.tta_shift)
        logits, targets = predict_logits(self.model, self.test_loader, flip, shift)
        with no_grad():
            loss = float(cross_entropy(Tensor(logits), Tensor(targets)).item())
        return dict(test_loss=loss, test_acc=metrics.accuracy(logits, targets))

    def fit(self):
        """Train to ``cfg.epochs``; returns the history (one dict per epoch)."""
        cfg = self.cfg
        wall = self.history[-1]["wall_time"] if self.history else 0.0
        with self.run_dir, _deferred_interrupt(self):  # the lock, again after an earlier fit
            self._write_json("config.json", dataclasses.asdict(cfg))
            try:
                while self.epoch < cfg.epochs:
                    t0 = time.perf_counter()
                    row = self.train_one_epoch()
                    # skipping the test pass saves its time (12 of 214 s in a CPU ResNet-20 epoch);
                    # the last epoch is always tested, so a run always ends with a best.tvz
                    tested = (self.epoch + 1) % cfg.eval_every == 0 or self.epoch + 1 == cfg.epochs
                    if tested and cfg.bn_recalibration and self.train_crop(self.epoch) is not None:
                        self.recalibrate_bn()
                    row.update(self.evaluate() if tested else dict(test_loss=None, test_acc=None))
                    if cfg.final_tta and self.epoch + 1 == cfg.epochs:
                        row.update({"tta_" + k: v for k, v in self.evaluate(cfg.final_tta).items()})
                    wall += time.perf_counter() - t0
                    row.update(epoch=self.epoch + 1, lr=self.optimizer.param_groups[0]["lr"], wall_time=wall)
                    self.history.append(row)
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    if tested and row["test_acc"] > self.best_acc:
                        self.best_acc = row["test_acc"]
                        self.save_checkpoint("best.tvz")
                    self.save_checkpoint("last.tvz")
                    self._write_metrics()
                    test = (f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f}" if tested
                            else f"test every {cfg.eval_every} epochs")
                    if "tta_test_acc" in row:
                        test += f" ({row['tta_test_acc']:.4f} with {_tta_name(cfg.final_tta)})"
                    self.log(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                             f"{test} | {row['images_per_s']:.0f} img/s at {row['train_size']}px | {wall / 60:.1f} min")
            except _StopRequested:
                path = self.save_checkpoint("last.tvz")
                print(f"\ninterrupted at epoch {self.epoch + 1}, step {self.step_in_epoch}; saved {path}. "
                      f"Continue with: python -m tinyvision train --resume {cfg.out}", flush=True)
                raise
            except KeyboardInterrupt:  # a second Ctrl-C, maybe mid-step: the state is not saved
                if self.last_saved is None:
                    saved = "no checkpoint was saved"
                else:
                    epoch, step = self.last_saved
                    saved = (f"the last checkpoint, {os.path.join(cfg.out, 'last.tvz')}, is from "
                             + (f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"))
                print(f"\nstopped at once, without saving; {saved}", flush=True)
                raise
        return self.history

    def summary(self):
        """The line the commands print when a run ends (best among the tested epochs)."""
        if not self.history:
            return f"done: no epochs trained (epochs={self.cfg.epochs}); run folder {self.cfg.out}"
        last = self.history[-1]
        tta = (f" ({last['tta_test_acc']:.4f} after the last epoch with {_tta_name(self.cfg.final_tta)})"
               if "tta_test_acc" in last else "")
        return (f"done: {len(self.history)} epochs, best test accuracy {self.best_acc:.4f}{tta}, "
                f"{last['wall_time'] / 60:.1f} min; run folder {self.cfg.out}")

    def _write_metrics(self):
        keys = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time",
                "images_per_s", "train_size", "wall_time", "tta_test_loss", "tta_test_acc"]
        with atomic_open(os.path.join(self.cfg.out, "metrics.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)
        self._write_json("history.json", self.history)

    def _write_json(self, name, obj):
        write_json(os.path.join(self.cfg.out, name), obj)


def _tta_name(tta):
    """[True, 2] -> 'flip + shift 2 TTA'."""
    flip, shift = tta
    return " + ".join((["flip"] if flip else []) + ([f"shift {shift}"] if shift else []) or ["no"]) + " TTA"


class _StopRequested(KeyboardInterrupt):
    """The first Ctrl-C, acted on between two optimizer steps (the run is saved)."""


class _deferred_interrupt:
    """Turn the first Ctrl-C (SIGINT) into a flag that the loop checks between steps, so the
    checkpoint it then writes never holds a half-applied optimizer update; a second Ctrl-C
    interrupts at once. Outside the main thread (where signals cannot be caught) it does nothing."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                if self.trainer._interrupted:
                    raise KeyboardInterrupt
                self.trainer._interrupted = True
            self.previous = signal.signal(signal.SIGINT, handler)
        self.trainer._interrupted = False
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class _NoBar:
    def update(self, n): pass
    def set_postfix(self, **kw): pass
    def close(self): pass


def _progress(total, desc, enabled, initial=0):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, initial=initial, unit="batch", dynamic_ncols=True, leave=False)


def load_checkpoint_model(path, device="cpu"):
    """The model of a training checkpoint, in eval mode, with its config and class names.
    CheckpointError, one line naming the file, for anything else: a detection/segmentation or
    pretraining checkpoint (``serialization.classifier_checkpoint``), or weights that do not
    fit the model its config names."""
    from .errors import CheckpointError
    from .serialization import classifier_checkpoint
    state = classifier_checkpoint(load(path), path)
    try:
        cfg = TrainConfig(**state["config"])
    except TypeError as exc:
        raise CheckpointError(f"{path}: its config does not fit this tinyvision's TrainConfig ({exc})") from None
    model = models.create(cfg.model, num_classes=len(state["classes"]), **cfg.model_kwargs)
    models.pretrained.load_state(model, state["model"], path)
    return model.to(backend.check_device(device)).eval(), cfg, list(state["classes"])
