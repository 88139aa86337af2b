"""Training and evaluation: one training step, a readable loop, checkpoints and exact resume.

The loop is the one every deep-learning course draws:

    for each epoch:
        for each batch (x, y):
            loss = cross_entropy(model(x), y)      forward
            loss.backward()                         backward: dL/dtheta
            clip_grad_norm_(params, c)              optional, the article's formula
            optimizer.step(); scheduler.step()      theta <- theta - lr * update
        evaluate on the test split, log, checkpoint

``train_step`` is the inner four lines; every loop of the library runs it (``Trainer``, the
detection and segmentation loop ``tasks.loop``, the chapters' ``fit``) with its own objective.
Around it: ``recipes`` (what a run is), ``evaluate`` (test-time augmentation), ``progressive``
and ``speedrun`` (loops that do more), ``interrupt`` (Ctrl-C), ``rundir`` (the run folder).

A checkpoint holds everything a run needs to continue bit for bit: model, optimizer and
scheduler state, the data loader's position (each batch's order and augmentation come from
seeded generators), the random generator (dropout, stochastic depth) and the step within the
epoch. Ctrl-C lets the current step finish, writes one and stops (``--resume RUN_DIR``
continues); a second Ctrl-C stops at once, without saving.
"""
import csv
import dataclasses
import os
import time

from . import backend, data, metrics, models, optim, rundir
from .errors import RunDirError
from .evaluate import predict_logits, tta_border, tta_name
from .fileio import atomic_open, write_json
from .interrupt import DeferredInterrupt, StopRequested, stopped_at_once
from .ops import cross_entropy
from .progress import progress_bar, read_losses, say
from .recipes import (RECIPES, SUBCLASS_FIELDS, TrainConfig, build_optimizer, build_scheduler,  # noqa: F401 (RECIPES: for chapters)
                      build_transform, load_datasets)
from .serialization import classifier_checkpoint, load, save
from .tensor import Tensor, no_grad


def classification_loss(model, x, y, label_smoothing=0.0, weight=None):
    """A classifier's objective on one batch: (cross-entropy of model(x) against y, the number
    of correct predictions as a device array)."""
    logits = model(x)
    loss = cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing)
    return loss, (logits.data.argmax(axis=1) == y.data).sum()


def train_step(model, optimizer, objective, x, y, clip_grad=0.0, scheduler=None):
    """One optimisation step on the batch (x, y):

        loss, extra = objective(x, y)          forward
        loss.backward()                         dL/dtheta, after zeroing the old gradients
        clip_grad_norm_(params, clip_grad)      when clip_grad > 0
        optimizer.step(); scheduler.step()      theta <- theta - lr * update

    Returns (loss as a device array, extra): reading either would synchronise a GPU, so the
    loops read them a few steps at a time (``read_losses``)."""
    loss, extra = objective(x, y)
    optimizer.zero_grad()
    loss.backward()
    if clip_grad:
        optim.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.data, extra


class Trainer:
    """Trains ``cfg.model`` on CIFAR-10 as ``cfg`` says and writes the run to ``cfg.out``:
    metrics.csv, history.json, config.json, last.tvz and best.tvz checkpoints. Whole images
    only: ``cfg.progressive`` needs ``progressive.ProgressiveTrainer``.

    The run folder is claimed and locked before any data loads (``rundir.claim``): ``cfg.out``
    None picks a fresh runs/MODEL[-N]; a folder holding another run is refused unless
    ``overwrite``. The lock is held to the end of ``fit`` (or ``close()``).

    ``progress``: the per-batch bar; ``log`` (printed by default, None for silence): one line per
    epoch. ``model`` and ``datasets`` (train, test) replace the fresh ``cfg.model`` and the CIFAR-10
    splits of ``cfg.data`` (fine-tuning, pretext tasks, in-memory data); data sets need
    ``data``/``targets``/``classes`` like ``data.CIFAR10``. ``run_dir``: a ``rundir.RunDir``
    already held for ``cfg.out`` (``resume``).
    """

    follows_fields = ()  # the SUBCLASS_FIELDS of the config this class acts on (ProgressiveTrainer, ...)

    def __init__(self, cfg, progress=True, log=say, model=None, datasets=None, overwrite=False, run_dir=None):
        cfg = cfg.resolved()
        unfollowed = [f"{name} ({cls})" for name, cls in SUBCLASS_FIELDS.items()
                      if getattr(cfg, name) not in (None, False, 0, []) and name not in self.follows_fields]
        if unfollowed:  # refused rather than silently ignored
            raise ValueError(f"{', '.join(unfollowed)}: set, but {type(self).__name__} does not follow it")
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
        self.train_loader = data.DataLoader(self.train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                            seed=cfg.seed, transform=train_transform, device=self.device,
                                            prefetch=cfg.prefetch)
        self.test_loader = data.DataLoader(self.test_set, batch_size=cfg.eval_batch_size, transform=test_transform,
                                           device=self.device, prefetch=cfg.prefetch)
        if len(self.train_loader) == 0:
            raise ValueError(f"the training set has {len(self.train_set)} images, fewer than one batch "
                             f"of {cfg.batch_size}; lower --batch-size or use more images")
        self.optimizer, self.scheduler = self.build_optimization()
        self.epoch, self.step_in_epoch, self.history, self.best_acc = 0, 0, [], 0.0
        self.last_saved = None  # (epoch, step_in_epoch) of the newest last.tvz
        self._stop = DeferredInterrupt()  # Ctrl-C: stop between two steps (fit)

    def close(self):
        """Release the run folder's lock (``fit`` does when it ends; also at exit)."""
        self.run_dir.release()

    def build_transforms(self):
        """(train, test) batch transforms: the recipe's augmentation, then the model's own
        normalisation (``default_cfg`` mean and std); subclasses feeding other sizes override it."""
        mean, std = self.model.default_cfg["mean"], self.model.default_cfg["std"]
        return build_transform(self.cfg.augment, mean, std), build_transform("none", mean, std)

    def build_optimization(self):
        """(optimizer, scheduler) of the recipe for ``self.model``. Subclasses that change the
        parameter groups do it here: a schedule sets the groups' learning rates when it is
        built (one-cycle starts at max_lr / 25), so it must be built last, on the final groups."""
        optimizer = build_optimizer(self.model, self.cfg)
        return optimizer, build_scheduler(optimizer, self.cfg, len(self.train_loader))

    # ------------------------------------------------------------ checkpoints
    def state_dict(self):
        """Everything ``load_state_dict`` needs to continue the run bit for bit."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "loader": self.train_loader.state_dict(),   # mid-epoch: the batches already used
                "rng": backend.get_rng_state(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "history": self.history, "best_acc": self.best_acc,
                "config": dataclasses.asdict(self.cfg), "classes": self.classes}

    def save_checkpoint(self, name):
        path = os.path.join(self.cfg.out, name)
        save(self.state_dict(), path)
        if name == "last.tvz":
            self.last_saved = (self.epoch, self.step_in_epoch)
        return path

    def load_state_dict(self, state, source="the checkpoint"):
        """Continue from ``state`` (a ``state_dict``); weights that do not fit the model raise
        CheckpointError, one line naming ``source`` and both models."""
        models.pretrained.load_state(self.model, state["model"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loader"])
        backend.set_rng_state(state["rng"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.history, self.best_acc = list(state["history"]), float(state["best_acc"])
        self.last_saved = (self.epoch, self.step_in_epoch)

    @classmethod
    def resume(cls, run_dir, progress=True, log=say, **overrides):
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
            trainer.load_state_dict(state, path)
        except BaseException:
            held.release()
            raise
        return trainer

    # ------------------------------------------------------------ the loop
    def compute_loss(self, x, y):
        """The training objective on one batch: (loss Tensor, number of correct predictions as
        a device array). Subclasses with another objective (pretext tasks) override this."""
        return classification_loss(self.model, x, y, self.cfg.label_smoothing)

    def train_step(self, x, y):
        """``train_step`` with this run's model, optimizer, objective, clipping and schedule."""
        return train_step(self.model, self.optimizer, self.compute_loss, x, y, self.cfg.clip_grad, self.scheduler)

    def train_one_epoch(self):
        cfg = self.cfg
        self.model.train()
        total = len(self.train_loader)
        bar = progress_bar(total, f"epoch {self.epoch + 1}/{cfg.epochs}", self.progress, initial=self.step_in_epoch)
        loss_sum = correct_sum = 0.0
        seen, start, pending, size = 0, time.perf_counter(), [], None
        for x, y in self.train_loader:  # continues mid-epoch after a resume
            loss, correct = self.train_step(x, y)
            pending.append((loss, correct, len(y)))
            self.step_in_epoch, size = self.step_in_epoch + 1, x.shape[-1]
            if self._stop.requested:  # Ctrl-C arrived during the step: stop between two steps
                raise StopRequested
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
                    epoch_time=elapsed, images_per_s=seen / max(elapsed, 1e-9), train_size=size)

    def evaluate(self, tta=None):
        """test_loss and test_acc with the test-time augmentation ``tta`` = [flip, shift]
        (default: the config's tta_flip and tta_shift)."""
        flip, shift = tta or (self.cfg.tta_flip, self.cfg.tta_shift)
        logits, targets = predict_logits(self.model, self.test_loader, flip, shift, tta_border(self.cfg.augment))
        with no_grad():
            loss = float(cross_entropy(Tensor(logits), Tensor(targets)).item())
        return dict(test_loss=loss, test_acc=metrics.accuracy(logits, targets))

    def fit(self):
        """Train to ``cfg.epochs``; returns the history (one dict per epoch)."""
        cfg, wall = self.cfg, (self.history[-1]["wall_time"] if self.history else 0.0)
        with self.run_dir, self._stop:  # the lock, again after an earlier fit
            self._write_json("config.json", dataclasses.asdict(cfg))
            try:
                while self.epoch < cfg.epochs:
                    t0 = time.perf_counter()
                    row = self.train_one_epoch()
                    # the last epoch is always tested, so a run always ends with a best.tvz
                    tested = (self.epoch + 1) % cfg.eval_every == 0 or self.epoch + 1 == cfg.epochs
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
                        test += f" ({row['tta_test_acc']:.4f} with {tta_name(cfg.final_tta)})"
                    self.log(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                             f"{test} | {row['images_per_s']:.0f} img/s at {row['train_size']}px | {wall / 60:.1f} min")
            except StopRequested:
                path = self.save_checkpoint("last.tvz")
                print(f"\ninterrupted at epoch {self.epoch + 1}, step {self.step_in_epoch}; saved {path}. "
                      f"Continue with: python -m tinyvision train --resume {cfg.out}", flush=True)
                raise
            except KeyboardInterrupt:  # a second Ctrl-C, maybe mid-step: the state is not saved
                print(stopped_at_once(self.last_saved, os.path.join(cfg.out, "last.tvz")), flush=True)
                raise
        return self.history

    def summary(self):
        """The line the commands print when a run ends (best among the tested epochs)."""
        if not self.history:
            return f"done: no epochs trained (epochs={self.cfg.epochs}); run folder {self.cfg.out}"
        last = self.history[-1]
        tta = (f" ({last['tta_test_acc']:.4f} after the last epoch with {tta_name(self.cfg.final_tta)})"
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
