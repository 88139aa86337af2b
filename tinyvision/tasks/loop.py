"""The training loop, evaluation and checkpoints of the detection and segmentation tasks.

Each step is the classifier's ``train.train_step`` with the task's own objective:

    for each epoch, for each shuffled batch of scenes (random left-right flips):
        train_step(model, AdamW, model.loss, images, targets, clip_grad=5, warmup + cosine schedule)
    evaluate on the test scenes; save OUT/last.tvz and OUT/metrics.json

The scenes' targets (boxes, masks) are lists and arrays rather than a loader's label tensor,
so the batches are drawn here, not by ``data.DataLoader``.

A checkpoint holds the model's weights and everything needed to rebuild it (task, backbone,
model options, class names), so ``load_checkpoint`` needs nothing else.
"""
import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backend, optim
from ..fileio import write_json
from ..serialization import load, save
from ..tensor import Tensor
from ..progress import progress_bar, read_losses
from ..train import train_step
from ..transfer.finetune import finetune_param_groups
from . import detection, segmentation

TASKS = {"detect": detection, "segment": segmentation}
LOG_INTERVAL = 20     # steps between reads of the loss (and progress-bar updates)
# Small backbones, sized for a few minutes of CPU training on 64x64 scenes; 'resnet20' and
# 'vit_cifar_small' are the CIFAR classifiers' architectures, so that their trained weights
# can start a task (``TaskConfig.pretrained``).
BACKBONE_DEFAULTS = {"resnet": dict(widths=(32, 64, 128), blocks=(1, 1, 1)),
                     "vit": dict(patch_size=8, embed_dim=128, depth=4, num_heads=4),
                     "resnet20": dict(model="resnet20"), "vit_cifar_small": dict(model="vit_cifar_small")}


@dataclass
class TaskConfig:
    """One training run. ``classes``: CIFAR class ids of the scenes (None: all ten);
    ``model_kwargs`` override ``BACKBONE_DEFAULTS``; ``pretrained``: a classification
    checkpoint (.tvz or .safetensors) whose weights start the backbone ('resnet20' or
    'vit_cifar_small' with a checkpoint of that classifier), which
    then learns at ``backbone_lr_scale`` times the rate of the new layers."""
    task: str = "detect"
    backbone: str = "resnet"
    data: str = "datasets/cache/cifar10-jpeg.tar.gz"
    out: str = "runs/detect_resnet"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    train_scenes: int = 8000
    test_scenes: int = 1000
    classes: list = None
    seed: int = 0
    device: str = "cpu"
    pretrained: str = None
    allow_missing: bool = False    # load what fits of ``pretrained`` instead of refusing a mismatch
    backbone_lr_scale: float = 1.0
    model_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}")
        if self.backbone not in BACKBONE_DEFAULTS:
            raise ValueError(f"backbone must be one of {sorted(BACKBONE_DEFAULTS)}, got {self.backbone!r}")


def model_options(cfg):
    """The backbone options a run uses: ``BACKBONE_DEFAULTS`` updated by ``cfg.model_kwargs``."""
    return dict(BACKBONE_DEFAULTS[cfg.backbone], **cfg.model_kwargs)


def build_model(cfg, num_classes):
    """The task's model for ``num_classes`` object classes (segmentation adds background)."""
    outputs = num_classes + (1 if cfg.task == "segment" else 0)
    return TASKS[cfg.task].build_model(outputs, cfg.backbone, **model_options(cfg))


def predict(task, model, dataset, batch_size=64, device="cpu", tta_flip=False):
    """Model outputs for every scene of ``dataset``, in eval mode: a list of detection dicts
    ('detect') or label maps int64 (N, S, S) ('segment'; ``tta_flip``: averaged with the
    mirror image, see ``Segmenter.predict``)."""
    if tta_flip and task != "segment":
        raise ValueError(f"flip test-time augmentation is implemented for segmentation, not {task!r}")
    model.eval()
    out = []
    for i in range(0, len(dataset), batch_size):
        x, _ = dataset.batch(np.arange(i, min(i + batch_size, len(dataset))))
        x = Tensor(x, device=device)
        p = model.predict(x, tta_flip=True) if tta_flip else model.predict(x)   # detectors take no tta_flip
        out += p if task == "detect" else [p]
    return out if task == "detect" else np.concatenate(out)


def evaluate(task, model, dataset, batch_size=64, device="cpu", tta_flip=False):
    """The task's metrics on ``dataset``: detection AP@0.5, AP@[.5:.95], precision, recall;
    segmentation pixel accuracy, mIoU, per-class IoU (``tta_flip``: see ``predict``)."""
    preds = predict(task, model, dataset, batch_size, device, tta_flip)
    if task == "detect":
        truths = [dataset.target(i) for i in range(len(dataset))]
        return detection.evaluate(preds, truths, dataset.num_classes)
    return segmentation.evaluate(preds, dataset.masks, dataset.num_classes + 1)


def fit(cfg, train_set, test_set, progress=True, log=print):
    """Train ``cfg``'s model on ``train_set``, evaluate on ``test_set`` after the last epoch
    (and write OUT/last.tvz after every epoch). Returns (model, history list of dicts)."""
    backend.manual_seed(cfg.seed)
    os.makedirs(cfg.out, exist_ok=True)
    model = build_model(cfg, train_set.num_classes)
    if cfg.pretrained:
        if not hasattr(model.backbone, "load_pretrained"):
            raise ValueError(f"the {cfg.backbone!r} backbone has no pretrained weights to load; use backbone "
                             "'resnet20' or 'vit_cifar_small' with a checkpoint of that classifier")
        model.backbone.load_pretrained(cfg.pretrained, strict=not cfg.allow_missing)
    model.to(cfg.device)
    opt = optim.AdamW(finetune_param_groups(model, cfg.lr, cfg.weight_decay, cfg.backbone_lr_scale,
                                            backbone=model.backbone), lr=cfg.lr)
    steps_per_epoch = max(len(train_set) // cfg.batch_size, 1)
    total = cfg.epochs * steps_per_epoch
    warmup = max(min(cfg.warmup_steps, total // 2), 1)
    sched = optim.LinearWarmup(optim.CosineAnnealingLR(opt, T_max=max(total - warmup, 1)), warmup_steps=warmup)
    rng = np.random.default_rng(cfg.seed)
    history, start = [], time.time()
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(train_set))
        bar = progress_bar(steps_per_epoch, f"{cfg.task} {cfg.backbone} epoch {epoch + 1}/{cfg.epochs}", progress)
        losses, pending = [], []
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            x, targets = train_set.batch(idx, flip=rng.random(len(idx)) < 0.5)
            loss, parts = train_step(model, opt, model.loss, Tensor(x, device=cfg.device), targets,
                                     clip_grad=5.0, scheduler=sched)
            pending.append(loss)
            if len(pending) == LOG_INTERVAL or s == steps_per_epoch - 1:
                losses += read_losses(pending, epoch + 1, s + 1, "lower --lr", what=f"{cfg.task} loss")
                bar.update(len(pending))
                bar.set_postfix(loss=f"{np.mean(losses[-LOG_INTERVAL:]):.3f}",
                                **{k: f"{float(v):.3f}" for k, v in parts.items()})
                pending = []
        bar.close()
        row = dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), wall_time=time.time() - start)
        if epoch + 1 == cfg.epochs:
            row.update(evaluate(cfg.task, model, test_set, device=cfg.device))
        history.append(row)
        save_checkpoint(os.path.join(cfg.out, "last.tvz"), model, cfg, train_set.classes, history)
        write_json(os.path.join(cfg.out, "metrics.json"), history)
        log(f"epoch {epoch + 1}: loss {row['train_loss']:.4f} | {row['wall_time'] / 60:.1f} min"
            + "".join(f" | {k} {v:.4f}" for k, v in row.items() if k in ("ap50", "ap", "miou", "pixel_accuracy")))
    return model, history


def save_checkpoint(path, model, cfg, classes, history):
    """Weights, config, class names and history in one .tvz (``tv.save``, atomic)."""
    config = dict(dataclasses.asdict(cfg), model_kwargs=model_options(cfg))
    save(dict(model=model.state_dict(), config=config, classes=list(classes),
              history=history), path)


def load_checkpoint(path, device="cpu"):
    """(model in eval mode, TaskConfig, class names) from a checkpoint of ``fit``."""
    state = load(path)
    cfg = TaskConfig(**state["config"])
    model = build_model(cfg, len(state["classes"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, list(state["classes"])
