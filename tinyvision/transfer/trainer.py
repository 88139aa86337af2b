"""A Trainer that takes its model, data and parameter groups from the caller.

``train.Trainer`` builds a fresh model of ``cfg.model`` and the CIFAR-10 splits itself.
Fine-tuning and pretext pretraining need the same loop (schedules, clipping, progress,
metrics.csv, checkpoints) around another model (a loaded backbone, a pretext wrapper), other
data (a class split, a label budget, images in memory) and other optimizer groups (a lower
backbone lr). This subclass hands the model and data to the base class and swaps in the
transforms and parameter groups, so no line of the loop is written twice.
"""
import dataclasses

import numpy as np

from .. import backend, data
from ..ops.resize import bilinear_matrix
from ..tensor import no_grad
from ..recipes import build_optimizer, build_scheduler, build_transform, load_datasets
from ..train import Trainer
from .pretext import build_pretext, save_backbone


class Resize:
    """Bilinear resize of a float batch (N, C, H, W) -> (N, C, size, size), as a batch
    transform: y[n, c] = A x[n, c] B^T with the interpolation matrices of
    ``ops.resize.bilinear_matrix`` (pixel centres aligned, PyTorch's align_corners=False).
    Used to feed 32x32 CIFAR images to models pretrained at 224x224."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, x, rng=None):
        xp = backend.array_module(x)
        H, W = x.shape[-2:]
        A = xp.asarray(bilinear_matrix(H, self.size), dtype=x.dtype)
        B = xp.asarray(bilinear_matrix(W, self.size), dtype=x.dtype)
        return A @ x @ B.T

    def __repr__(self):
        return f"Resize({self.size})"


def model_transform(augment, model):
    """The batch transform for ``model``: CIFAR augmentation at 32x32, the model's
    normalisation, then a resize to the model's input size where it is not 32."""
    cfg = model.default_cfg
    transform = build_transform(augment, cfg["mean"], cfg["std"])
    size = cfg["input_size"][-1]
    return transform if size == 32 else data.Compose([transform, Resize(size)])


class AdaptedTrainer(Trainer):
    """``Trainer`` over a given ``model``, ``train_set``/``test_set`` (data sets with
    ``data``, ``targets``, ``classes``) and optimizer ``param_groups`` (dicts with 'params'
    and options such as 'lr'; None: the recipe's weight-decay groups of ``model``).

    ``cfg.model`` must name the model's architecture (it selects the recipe). ``cfg.subset``
    and ``cfg.test_subset`` are left to the caller, who chose the data.
    Not resumable with ``Trainer.resume`` (which rebuilds from the config alone).
    ``run_dir``: a run folder already claimed (``rundir.claim``), as the command line does to
    name a new folder after the task (runs/finetune_NAME, runs/pretrain_METHOD_MODEL).
    """

    def __init__(self, cfg, model, train_set, test_set, param_groups=None, progress=True, run_dir=None):
        self.param_groups = param_groups
        super().__init__(cfg, progress=progress, model=model, datasets=(train_set, test_set), run_dir=run_dir)

    def build_transforms(self):
        # the model's own input size and normalisation (a 224x224 backbone gets resized images)
        return model_transform(self.cfg.augment, self.model), model_transform("none", self.model)

    def build_optimization(self):
        optimizer = build_optimizer(self.model, self.cfg)   # the recipe's optimizer class and options
        if self.param_groups is not None:
            optimizer.param_groups = []
            for group in self.param_groups:
                optimizer.add_param_group(group)
        return optimizer, build_scheduler(optimizer, self.cfg, len(self.train_loader))


class PretextTrainer(AdaptedTrainer):
    """``Trainer`` for a self-supervised task (``transfer.pretext``) on CIFAR-10 images, whose
    labels are ignored: ``cfg.model`` is the backbone, ``method`` the task, ``task_kwargs``
    its options (e.g. mask_ratio). ``test_acc`` is the pretext accuracy (position or
    rotation; 0 for the MAE, which has none) on the test images with a fixed seed, so epochs
    compare. ``export(path)`` writes the backbone as ``.safetensors`` for fine-tuning.
    Position prediction trains with flips only (cfg.augment None -> 'flip'), see below."""

    def __init__(self, cfg, method, progress=True, datasets=None, run_dir=None, **task_kwargs):
        if method == "position":
            # Random crops pad with a constant: a patch holding padding gives its border
            # position away, a shortcut that does not exist on test images. Flips only.
            if cfg.augment is not None and "crop" in cfg.augment:
                raise ValueError(f"position prediction with augment={cfg.augment!r}: the crop's padding "
                                 "reveals where border patches belong; use 'flip' or 'none'")
            cfg = dataclasses.replace(cfg, augment=cfg.augment or "flip")
        backend.manual_seed(cfg.seed)   # the task's initialisation is part of the run
        self.task = build_pretext(method, cfg.model, cfg.model_kwargs, **task_kwargs)
        train_set, test_set = datasets if datasets is not None else load_datasets(cfg)
        super().__init__(cfg, self.task, train_set, test_set, progress=progress, run_dir=run_dir)

    def compute_loss(self, x, y):
        loss, acc = self.model.loss(x)
        return loss, (acc or 0.0) * len(y)

    def evaluate(self):
        rng = np.random.default_rng(0)   # the same shuffles/masks/rotations every epoch
        total = loss_sum = acc_sum = 0.0
        self.model.eval()
        with no_grad():
            for x, _ in self.test_loader:
                loss, acc = self.model.loss(x, rng)
                n = x.shape[0]
                loss_sum, acc_sum, total = loss_sum + float(loss.item()) * n, acc_sum + (acc or 0.0) * n, total + n
        self.model.train()
        return dict(test_loss=loss_sum / total, test_acc=acc_sum / total)

    def export(self, path):
        return save_backbone(self.task, path, self.cfg.model_kwargs)
