"""``python -m tinyvision finetune`` and ``python -m tinyvision pretrain``.

``add_subparsers(sub)`` registers both commands on the main parser's subparsers object.
"""
import dataclasses
import os

from ..train import TrainConfig
from .pretext import METHODS
from .finetune import MODES


def _add_loop_args(p, epochs):
    """Options shared with ``train``: None means "the recipe's value"."""
    p.add_argument("--data", default=TrainConfig().data, help="CIFAR-10 location (as for train)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--lr", type=float, help="peak lr (of the head, when fine-tuning); default: the recipe's")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "constant"])
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--augment", choices=["none", "flip", "crop_flip", "crop_flip_cutout"])
    p.add_argument("--subset", type=int, help="K training images per class")
    p.add_argument("--test-subset", type=int, help="evaluate on K images per class")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def _config(args, **fields):
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return TrainConfig(**dict(values, **fields))


def cmd_finetune(args):
    from .finetune import FinetuneOptions, FinetuneTrainer
    from .splits import parse_classes
    options = FinetuneOptions(
        source=args.checkpoint, mode=args.mode, backbone_lr_scale=args.backbone_lr_scale,
        freeze_stages=args.freeze_stages, classes=parse_classes(args.classes) if args.classes else None,
        label_fraction=args.label_fraction, model=args.model, img_size=args.img_size)
    out = args.out or os.path.join("runs", "finetune_" + os.path.splitext(os.path.basename(args.checkpoint))[0])
    trainer = FinetuneTrainer(_config(args, model=args.model or "resnet20", out=out), options,
                              progress=not args.no_progress)
    if args.num_classes is not None and args.num_classes != len(trainer.classes):
        raise SystemExit(f"--num-classes {args.num_classes} but the data has {len(trainer.classes)} classes "
                         f"({', '.join(trainer.classes)}); drop --num-classes or fix --classes")
    result = trainer.info["load"]
    new = result.missing_keys + [k for k, _, _ in result.mismatched_keys]
    print(f"{trainer.info['architecture']} from {args.checkpoint}: {len(new)} tensors not from the file "
          f"({', '.join(new[:4])}{'...' if len(new) > 4 else ''}), "
          f"{len(trainer.info['trainable'])} trainable tensors, classes {trainer.classes}")
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    print(trainer.summary())
    return 0


def cmd_pretrain(args):
    from .trainer import PretextTrainer
    kwargs = {"mask_ratio": args.mask_ratio} if args.method == "mae" else {}
    out = args.out or os.path.join("runs", f"pretrain_{args.method}_{args.model}")
    cfg = _config(args, out=out, label_smoothing=0.0)
    trainer = PretextTrainer(cfg, args.method, progress=not args.no_progress, **kwargs)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    path = trainer.export(os.path.join(out, "backbone.safetensors"))
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
    p.add_argument("--model", help="architecture, for a .safetensors file that does not record it")
    p.add_argument("--num-classes", type=int, help="check: the number of target classes")
    p.add_argument("--classes", help="target classes, relabelled 0..k-1: '5-9', '0,2,4' (default: all 10)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: train everything; linear: only the head (frozen backbone, BN in eval); "
                        "partial: freeze the first stages/blocks")
    p.add_argument("--freeze-stages", type=int, help="partial: frozen ResNet stages / ViT blocks "
                                                     "(default: all but the last stage; half the blocks)")
    p.add_argument("--backbone-lr-scale", type=float, default=0.1, help="backbone lr = scale * head lr")
    p.add_argument("--label-fraction", type=float, help="stratified fraction of the training labels, e.g. 0.01")
    p.add_argument("--img-size", type=int, help="model input size: CIFAR images are resized to it "
                                                "(e.g. 224 for vit_tiny_patch16_224; slow on a CPU)")
    p.add_argument("--out", help="run folder (default runs/finetune_NAME)")
    _add_loop_args(p, epochs=10)
    p.set_defaults(fn=cmd_finetune)

    p = sub.add_parser("pretrain", help="self-supervised pretraining on CIFAR-10 images (no labels)",
                       description="Pretrain a backbone with a pretext task; writes the run folder and "
                                   "OUT/backbone.safetensors for finetune.")
    p.add_argument("--method", choices=METHODS, required=True,
                   help="position: predict shuffled patches' positions (ViT); mae: masked-patch "
                        "reconstruction (ViT); rotation: predict 0/90/180/270 degrees (any model)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--mask-ratio", type=float, default=0.75, help="mae: fraction of patches hidden")
    p.add_argument("--out", help="run folder (default runs/pretrain_METHOD_MODEL)")
    _add_loop_args(p, epochs=10)
    p.set_defaults(fn=cmd_pretrain)
    return sub
