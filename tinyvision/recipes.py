"""What a training run is: its options (``TrainConfig``), the named recipes that fill them in,
the checks that refuse a bad value before any data is read, and the builders that turn a
config into transforms, optimizer, schedule and data sets.

The loop (``train.Trainer``) only consumes these; keeping them apart keeps the loop short and
lets the command line check every flag before it looks for (or downloads) the data.
"""
import dataclasses
import json
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


def speedrun_sgd(batch_size, momentum=0.85, lr_per_1024=11.5, decay_per_1024=0.0153):
    """airbench94's SGD rates (Jordan 2024) for our batch-MEAN loss: {'lr', 'weight_decay'}.

    airbench sums the loss over the batch and divides its rates by the "kilostep scale"
    S = 1024 (1 + 1 / (1 - mu)), the gain of Nesterov momentum mu on a steady gradient times
    1024, so that a step moves the weights by about lr_per_1024 / 1024 per example's gradient
    whatever mu. A sum is B times our mean, and its decay (lr x L2 coefficient, the fraction
    of each weight removed per step) is decay_per_1024 B / S; so in SGD's terms

        lr           = lr_per_1024 B / S                   (0.75 at B = 512, mu = 0.85)
        weight_decay = decay_per_1024 / lr_per_1024        (1.33e-3, any B and mu)

    The rate grows with the batch (the linear scaling rule): per example, and per epoch in
    weight decay, a run at B = 512 steps as far as airbench's at 1024, in twice the steps."""
    scale = 1024 * (1 + 1 / (1 - momentum))
    return {"lr": lr_per_1024 * batch_size / scale, "weight_decay": decay_per_1024 / lr_per_1024}


# speedrun_cpu: airbench94's recipe (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single
# GPU") for cifar_speedrun on the CPU, run by speedrun.SpeedrunTrainer: Nesterov SGD at
# speedrun_sgd's rates with 64x on batch norm biases, a triangular schedule, label smoothing
# 0.2, 2-pixel reflected translations with alternating flips, whitening from 5000 training
# images (its bias frozen after 3 epochs), lookahead every 5 steps, and flip + shift-1 TTA at
# the end (10 views). 18 epochs, not airbench's 9.9: ten reached 90.5% on the JPEG copy in 40
# minutes, and a 2-core CPU has 75 (docs/results.md); batch 512, not airbench's 1024: on a CPU a
# larger batch runs no faster per image (the GPU needs 1024 to fill its cores) but holds twice
# the activations (a process training at 512 peaks near 1.7 GB), and half the batch gives twice
# the steps per epoch at the same rate per example (speedrun_sgd). Tested only after the last
# epoch, as airbench does: a test pass, 10,000 images forward against an epoch's 50,000 forward
# and backward, costs about a tenth of an epoch (--eval-every 1 for a test curve).
RECIPES["speedrun_cpu"] = dict(
    model="cifar_speedrun", epochs=18, optimizer="sgd", **speedrun_sgd(512, 0.85), momentum=0.85, nesterov=True,
    norm_bias_lr_scale=64.0, schedule="triangle", warmup_epochs=0, label_smoothing=0.2, clip_grad=0.0,
    batch_size=512, augment="translate2_flip", alternating_flip=True, whitening_images=5000,
    whiten_bias_epochs=3, lookahead_every=5, eval_every=10, final_tta=[True, 1])


# the config fields that only a Trainer subclass acts on, and which one: a trainer that does not
# follow a field that is set refuses the config (train.Trainer) instead of ignoring it
SPEEDRUN_FIELDS = ("whitening_images", "whiten_bias_epochs", "lookahead_every", "alternating_flip")
SUBCLASS_FIELDS = {"progressive": "tinyvision.progressive.ProgressiveTrainer",
                   **{name: "tinyvision.speedrun.SpeedrunTrainer" for name in SPEEDRUN_FIELDS}}


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
    schedule: str = None           # 'onecycle' | 'cosine' | 'step' | 'constant' | 'triangle'
    warmup_epochs: int = None
    label_smoothing: float = None
    clip_grad: float = None        # max global gradient norm; 0 = no clipping
    batch_size: int = None
    augment: str = None            # 'none' | 'flip' | 'crop_flip' | 'crop_flip_cutout' | 'translate2_flip'
    norm_bias_lr_scale: float = None  # batch norm biases at lr x this (optim.param_groups_norm_bias; None: no such group)
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
    # followed by speedrun.SpeedrunTrainer (the command line picks it when one is set):
    whitening_images: int = None   # set the model's whitening conv from this many training images first (0: no)
    whiten_bias_epochs: int = None # train the whitening conv's bias this many epochs, then freeze it (None: never)
    lookahead_every: int = None    # optim.Lookahead every K steps, the slow weights kept at the end (0: off)
    alternating_flip: bool = None  # mirror each image in every other epoch instead of at random

    def recipe_values(self):
        """(name, values) of the recipe this config starts from: ``recipe``, else the model's own
        (``default_cfg['recipe']``), else 'resnet_sgd'; an InputError for an unknown model or recipe."""
        try:  # an unknown model: the registry's message lists close matches
            model_cfg = models.get_default_cfg(self.model or "resnet20")
        except KeyError as err:
            raise InputError(f"--model: {err.args[0]}") from None
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose from {sorted(RECIPES)}")
        name = self.recipe or model_cfg.get("recipe", "resnet_sgd")
        return name, RECIPES[name]

    def lr_for_batch_size(self):
        """(config, note): where this config sets ``batch_size`` but not ``lr``, a copy at the
        recipe's rate scaled to that batch, lr = recipe_lr x batch_size / recipe_batch_size, and a
        line that says so; else (self, None). The linear scaling rule: a step's gradient is a
        batch mean, so a rate in proportion to the batch moves the weights as far per example as
        the recipe does (``speedrun_sgd``). The command line's --batch-size applies it; in Python,
        ``lr`` None stays the recipe's rate whatever the batch (the chapters' small-batch runs)."""
        name, recipe = self.recipe_values()
        batch, base = self.batch_size, recipe["batch_size"]
        if self.lr is not None or not isinstance(batch, int) or isinstance(batch, bool) or batch < 1 or batch == base:
            return self, None
        lr = float(recipe["lr"]) * batch / base
        note = (f"lr {lr:.4g}: {name}'s {recipe['lr']:.4g} at batch {base}, times {batch}/{base} for "
                f"--batch-size {batch} (linear scaling; --lr overrides)")
        return dataclasses.replace(self, lr=lr), note

    def resolved(self):
        """A copy with the recipe's values filled in where this config says None; an InputError
        naming the flag (``--epochs: expected ...``) for a value no run can use, before any data
        is read."""
        recipe_name, recipe = self.recipe_values()
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
            "norm_bias_lr_scale": (lambda x: x is None or number(x) and x > 0, "a number > 0"),
            "whitening_images": (lambda x: x is None or integer(x) and x >= 0, "a number of images >= 0"),
            "whiten_bias_epochs": (lambda x: x is None or integer(x) and x >= 0, "an integer >= 0"),
            "lookahead_every": (lambda x: x is None or integer(x) and x >= 0, "a number of steps >= 0 (0: off)"),
            "alternating_flip": (lambda x: x is None or isinstance(x, bool), "true or false"),
        }
        for name, (accepts, expected) in checks.items():
            if not accepts(values[name]):
                raise InputError(f"--{name.replace('_', '-')}: expected {expected}, got {values[name]!r}")
        if values["final_tta"] is not None:
            values["final_tta"] = [bool(values["final_tta"][0]), values["final_tta"][1]]
        values["progressive"] = check_progressive(values["progressive"], values["epochs"])
        return TrainConfig(**values)


def check_model_kwargs(model, kwargs):
    """An InputError naming --model-arg and the keyword when ``models.create(model, **kwargs)``
    fails: an unknown keyword (TypeError) or a value the builder refuses (ValueError). It builds
    the model to find out, so the command line calls it once, before loading data, rather than
    ``TrainConfig.resolved`` (run several times a run, and on fine-tuning's big backbones)."""
    if not kwargs:
        return
    try:
        models.create(model, **kwargs)
    except (TypeError, ValueError) as err:
        named = [key for key in kwargs if key in str(err)] or list(kwargs)
        given = " ".join(f"{key}={json.dumps(kwargs[key], default=repr)}" for key in named)
        raise InputError(f"--model-arg {given}: {model} refuses it ({err})") from None


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


def build_transform(augment, mean, std, crop=None, random_flip=True):
    """The batch transform for training ('augment') or evaluation ('none').

    'crop_flip' moves images by up to 4 pixels (zero borders), 'translate2_flip' by up to 2
    with reflected borders (airbench's); both and 'flip' mirror half the images at random,
    unless ``random_flip`` is False (the flips then come from elsewhere: alternating flips).
    ``crop``: train on random crop x crop windows of the unpadded images instead (progressive
    resizing), with the rest of the augmentation as ``augment`` says."""
    steps = [data.RandomCrop(crop)] if crop else []
    if augment in ("crop_flip", "crop_flip_cutout") and not crop:
        steps.append(data.RandomCrop(32, padding=4))
    if augment == "translate2_flip" and not crop:
        steps.append(data.RandomCrop(32, padding=2, padding_mode="reflect"))
    if augment not in ("none", "flip", "crop_flip", "crop_flip_cutout", "translate2_flip"):
        raise ValueError(f"unknown augmentation {augment!r}; choose none, flip, crop_flip, crop_flip_cutout, "
                         "translate2_flip")
    if augment != "none" and random_flip:
        steps.append(data.RandomHorizontalFlip())
    steps += [data.ToTensor(), data.Normalize(mean, std)]
    if augment == "crop_flip_cutout":
        steps.append(data.Cutout(8))
    return data.Compose(steps)


def build_optimizer(model, cfg):
    """The recipe's optimizer over ``model``'s weight-decay parameter groups: no decay on
    biases and norm weights (``optim.param_groups_weight_decay``), or, with
    ``cfg.norm_bias_lr_scale``, decay on all and batch norm biases at that multiple of the
    rate (``optim.param_groups_norm_bias``)."""
    if cfg.norm_bias_lr_scale:
        groups = optim.param_groups_norm_bias(model, cfg.lr, cfg.weight_decay, cfg.norm_bias_lr_scale)
    else:
        groups = optim.param_groups_weight_decay(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.optimizer == "adam":
        return optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd, adam or adamw")


def build_scheduler(optimizer, cfg, steps_per_epoch):
    """A schedule stepped once per iteration, so that warmup and one-cycle are smooth.
    'triangle' (airbench's; ``warmup_epochs`` does not apply): each group's rate times
    0.2 -> 1 linearly over the first 23% of the steps, then linearly down to 0.07 at the end
    (not 0: the last steps still move the weights, and the lookahead averages them)."""
    total = cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        # each group peaks at its own rate (the 64x of --norm-bias-lr-scale survives)
        return optim.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total)
    if cfg.schedule == "triangle":
        peak = max(1, int(0.23 * total))
        return optim.LinearWarmup(optim.LinearLR(optimizer, 1.0, 0.07, max(1, total - peak)), peak, start_factor=0.2)
    if cfg.schedule == "cosine":
        sched = optim.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    elif cfg.schedule == "step":  # /10 at 50% and 75% of training, as in the ResNet paper
        sched = optim.MultiStepLR(optimizer, milestones=[total // 2, total * 3 // 4], gamma=0.1)
    elif cfg.schedule == "constant":
        sched = optim.StepLR(optimizer, step_size=max(1, total), gamma=1.0)
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; choose onecycle, cosine, step, constant, triangle")
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
