"""What a training run is: its options (``TrainConfig``), the named recipes that fill them in,
the checks that refuse a bad value before any data is read, and the builders that turn a
config into transforms, optimizer, schedule and data sets.

The loop (``train.Trainer``) only consumes these; keeping them apart keeps the loop short and
lets the command line check every flag before it looks for (or downloads) the data.
"""
import dataclasses
import math
from dataclasses import dataclass, field

from . import data, models, optim
from .errors import InputError

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
    epochs: int = None
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
            "final_tta": (lambda x: x is None or len(x) == 2 and integer(x[1]) and 0 <= x[1] < side,
                          f"[flip, shift] with a shift from 0 to {side - 1} pixels"),  # now, not after the last epoch
        }
        for name, (accepts, expected) in checks.items():
            if not accepts(values[name]):
                raise InputError(f"--{name.replace('_', '-')}: expected {expected}, got {values[name]!r}")
        if values["final_tta"] is not None:
            values["final_tta"] = [bool(values["final_tta"][0]), values["final_tta"][1]]
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
    """The recipe's optimizer over ``model``'s weight-decay parameter groups (no decay on
    biases and norm weights: ``optim.param_groups_weight_decay``)."""
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
    """The CIFAR-10 (train, test) splits of ``cfg.data``, cut to ``cfg.subset`` and
    ``cfg.test_subset`` images per class."""
    train_set = data.CIFAR10(cfg.data, train=True)
    test_set = data.CIFAR10(cfg.data, train=False)
    if cfg.subset:
        train_set = data.Subset(train_set, data.per_class_subset(train_set.targets, cfg.subset))
    if cfg.test_subset:
        test_set = data.Subset(test_set, data.per_class_subset(test_set.targets, cfg.test_subset))
    return train_set, test_set
