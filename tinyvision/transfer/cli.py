"""``python -m tinyvision finetune`` and ``python -m tinyvision pretrain``.

``add_subparsers(sub)`` registers both commands on the main parser's subparsers object.
Every argument is checked before any work starts (argparse types that name the flag; the
pairs of flags that must agree in ``cmd_*``), so a mistake costs no data loading.
"""
import argparse
import dataclasses
import math
import os

from .. import models, rundir
from ..data import resolve_cifar10
from ..errors import InputError
from ..train import TrainConfig
from .finetune import MODES
from .pretext import METHODS
from .splits import parse_classes

# the pretext methods that need a Vision Transformer (patches, blocks); rotation takes any model
VIT_METHODS = ("position", "mae")


def bounded(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a finite ``kind`` (int or float) in [low, high] (an open end where
    ``low_open``/``high_open``; None: unbounded), so that argparse names the flag in its
    one-line error, e.g. "argument --epochs: expected an integer >= 1, got '-3'"."""
    parts = [f"{'>' if low_open else '>='} {low}" if low is not None else "",
             f"{'<' if high_open else '<='} {high}" if high is not None else ""]
    expected = f"expected {'an integer' if kind is int else 'a number'} {' and '.join(p for p in parts if p)}".strip()

    def inside(value):
        return math.isfinite(value) and (low is None or (value > low if low_open else value >= low)) \
            and (high is None or (value < high if high_open else value <= high))

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not inside(value):
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
        return value
    parse.__name__ = kind.__name__   # argparse's fallback message names the type
    return parse


def class_list(text):
    """An argparse type: ``splits.parse_classes`` of CIFAR-10's ids, its error in argparse's line."""
    try:
        return parse_classes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def model_name(text):
    """An argparse type: a registered model name."""
    if text not in models.list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; python -m tinyvision models lists them")
    return text


def _add_loop_args(p, epochs):
    """Options shared with ``train``: None means "the recipe's value"."""
    p.add_argument("--data", help="CIFAR-10 location (as for train: default a copy in datasets/cache/, "
                                  "downloaded there if missing)")
    p.add_argument("--no-download", action="store_true", help="as for train")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (as for train)")
    p.add_argument("--epochs", type=bounded(int, 1), default=epochs)
    p.add_argument("--lr", type=bounded(float, 0, low_open=True),
                   help="peak lr (of the head, when fine-tuning); default: the recipe's")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--weight-decay", type=bounded(float, 0))
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "constant"])
    p.add_argument("--warmup-epochs", type=bounded(int, 0))
    p.add_argument("--batch-size", type=bounded(int, 1))
    p.add_argument("--augment", choices=["none", "flip", "crop_flip", "crop_flip_cutout"])
    p.add_argument("--subset", type=bounded(int, 1), help="K training images per class")
    p.add_argument("--test-subset", type=bounded(int, 1), help="evaluate on K images per class")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=bounded(int, 0), default=0)
    p.add_argument("--no-progress", action="store_true")


def _config(args, **fields):
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return TrainConfig(**dict(values, **fields))


def claim_run(args, name):
    """The run folder of a finetune, pretrain, detect or segment run, claimed before any data
    loads: --out, or a fresh runs/NAME[-N] (``rundir.claim``, --overwrite); then --data is
    located (or downloaded: --no-download)."""
    run = rundir.claim(args.out, name, args.overwrite)
    with run.released_on_error():
        args.data = resolve_cifar10(args.data, download=not args.no_download, progress=not args.no_progress)
    return run


def _check_finetune(args):
    """The flags of finetune that must agree, and its weights file's path, before any work."""
    classes = args.classes or range(10)
    if args.num_classes is not None and args.num_classes != len(classes):
        raise InputError(f"--num-classes {args.num_classes}, but --classes {','.join(map(str, classes))} "
                         f"names {len(classes)} classes; drop --num-classes or fix --classes")
    if args.subset and args.label_fraction:
        raise InputError("--subset and --label-fraction both choose the training labels; give one of them")
    if args.freeze_stages is not None and args.mode != "partial":
        raise InputError(f"--freeze-stages is for --mode partial, not --mode {args.mode}")
    if not os.path.exists(args.checkpoint):
        raise InputError(f"checkpoint {args.checkpoint}: no such file")


def cmd_finetune(args):
    from .finetune import FinetuneOptions, FinetuneTrainer, classifier_prefixes
    _check_finetune(args)
    options = FinetuneOptions(
        source=args.checkpoint, mode=args.mode, backbone_lr_scale=args.backbone_lr_scale,
        freeze_stages=args.freeze_stages, classes=args.classes, label_fraction=args.label_fraction,
        model=args.model, img_size=args.img_size, strict=not args.allow_missing)
    run = claim_run(args, "finetune_" + os.path.splitext(os.path.basename(args.checkpoint))[0])
    with run.released_on_error():
        trainer = FinetuneTrainer(_config(args, model=args.model or "resnet20", out=run.path), options,
                                  progress=not args.no_progress, run_dir=run)
    result, head = trainer.info["load"], classifier_prefixes(trainer.model)
    random = [k for k in result.missing_keys + [m[0] for m in result.mismatched_keys] if k.split(".")[0] not in head]
    print(f"{trainer.info['architecture']} from {args.checkpoint}: a new head for {len(trainer.classes)} classes "
          f"{trainer.classes}, {len(trainer.info['trainable'])} trainable tensors"
          + (f"; NOT from the file (--allow-missing, random initial values): {', '.join(random)}" if random else ""))
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    print(trainer.summary())
    return 0


def cmd_pretrain(args):
    from .trainer import PretextTrainer
    vits = models.list_models("vit*")
    if args.method in VIT_METHODS and args.model not in vits:
        raise InputError(f"--method {args.method} needs a Vision Transformer --model ({', '.join(vits)}), not "
                         f"{args.model}; --method rotation works with any model")
    kwargs = {"mask_ratio": args.mask_ratio} if args.method == "mae" else {}
    run = claim_run(args, f"pretrain_{args.method}_{args.model}")
    with run.released_on_error():
        trainer = PretextTrainer(_config(args, out=run.path, label_smoothing=0.0), args.method,
                                 progress=not args.no_progress, run_dir=run, **kwargs)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    path = trainer.export(os.path.join(run.path, "backbone.safetensors"))
    print(trainer.summary())
    print(f"backbone weights: {path}  (fine-tune with: python -m tinyvision finetune {path} --data ...)")
    return 0


def add_subparsers(sub):
    """Register ``finetune`` and ``pretrain`` on ``sub`` (from parser.add_subparsers())."""
    p = sub.add_parser("finetune", help="fine-tune a pretrained model on (some classes of) CIFAR-10",
                       description="Fine-tune from a training checkpoint (.tvz), a pretrain run's "
                                   "backbone.safetensors or last.tvz, or timm/torchvision .safetensors "
                                   "weights (then give --model). The head is replaced for the target classes.")
    p.add_argument("checkpoint", help=".tvz or .safetensors weights")
    p.add_argument("--model", type=model_name, help="architecture, for a .safetensors file that does not record it")
    p.add_argument("--allow-missing", action="store_true",
                   help="load a file whose weights (other than the replaced head) are missing or of other "
                        "shapes: those start from random values (default: refuse, naming each)")
    p.add_argument("--num-classes", type=bounded(int, 1), help="check: the number of target classes")
    p.add_argument("--classes", type=class_list,
                   help="target classes, relabelled 0..k-1: '5-9', '0,2,4' (default: all 10)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: train everything; linear: only the head (frozen backbone, BN in eval); "
                        "partial: freeze the first stages/blocks")
    p.add_argument("--freeze-stages", type=bounded(int, 0), help="partial: frozen ResNet stages / ViT blocks "
                                                     "(default: all but the last stage; half the blocks)")
    p.add_argument("--backbone-lr-scale", type=bounded(float, 0), default=0.1, help="backbone lr = scale * head lr")
    p.add_argument("--label-fraction", type=bounded(float, 0, 1, low_open=True),
                   help="stratified fraction of the training labels, e.g. 0.01")
    p.add_argument("--img-size", type=bounded(int, 1), help="model input size: CIFAR images are resized to it "
                                                "(e.g. 224 for vit_tiny_patch16_224; slow on a CPU)")
    p.add_argument("--out", help="run folder (default: a fresh runs/finetune_NAME, runs/finetune_NAME-2, ...)")
    _add_loop_args(p, epochs=10)
    p.set_defaults(fn=cmd_finetune)

    p = sub.add_parser("pretrain", help="self-supervised pretraining on CIFAR-10 images (no labels)",
                       description="Pretrain a backbone with a pretext task; writes the run folder and "
                                   "OUT/backbone.safetensors for finetune.")
    p.add_argument("--method", choices=METHODS, required=True,
                   help="position: predict shuffled patches' positions (ViT); mae: masked-patch "
                        "reconstruction (ViT); rotation: predict 0/90/180/270 degrees (any model)")
    p.add_argument("--model", type=model_name, default="resnet20")
    p.add_argument("--mask-ratio", type=bounded(float, 0, 1, low_open=True, high_open=True), default=0.75,
                   help="mae: fraction of patches hidden")
    p.add_argument("--out", help="run folder (default: a fresh runs/pretrain_METHOD_MODEL[-N])")
    _add_loop_args(p, epochs=10)
    p.set_defaults(fn=cmd_pretrain)
    return sub
