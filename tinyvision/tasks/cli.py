"""``python -m tinyvision detect train|eval|predict`` and ``... segment train|eval|predict``.

``add_subparsers(sub)`` registers both commands on the main parser's subparsers object.
Scenes are generated from the CIFAR-10 copy at ``--data`` (and cached, see ``scenes``).
"""
import json
import os

import numpy as np

from ..errors import CheckpointError, InputError
from ..tensor import Tensor
from ..transfer.cli import bounded, class_list
from .backbones import BACKBONES
from .scenes import normalize

TASK_NAMES = {"detect": "detection", "segment": "segmentation"}


def _splits(args, cfg=None):
    """The scenes of a run: --data, else (eval, predict) the run's recorded CIFAR-10 where it
    still exists, else a copy in datasets/cache/ or its download (``data.resolve_cifar10``)."""
    from ..data import resolve_cifar10
    from .scenes import scene_splits
    n_train = getattr(args, "train_scenes", None) or (cfg.train_scenes if cfg else 8000)
    n_test = args.test_scenes or (cfg.test_scenes if cfg else 1000)
    seed, classes = (cfg.seed, cfg.classes) if cfg else (args.seed, args.classes)
    recorded = cfg.data if cfg is not None and cfg.data and os.path.exists(cfg.data) else None
    source = resolve_cifar10(args.data or recorded, download=not args.no_download)
    return scene_splits(source, n_train, n_test, seed=seed, classes=classes)


def _check_pretrained(cfg):
    """Load ``cfg.pretrained`` into a model of ``cfg`` as ``fit`` will, before the scenes are
    made: a missing, unreadable or other model's file is reported at once, naming the flag."""
    from .loop import build_model
    if not cfg.pretrained:
        return
    if not os.path.exists(cfg.pretrained):
        raise InputError(f"--pretrained {cfg.pretrained}: no such file")
    model = build_model(cfg, len(cfg.classes or range(10)))
    if not hasattr(model.backbone, "load_pretrained"):
        raise InputError(f"--pretrained: the --backbone {cfg.backbone} has no pretrained weights to load; use "
                         "--backbone resnet20 or vit_cifar_small with a checkpoint of that classifier")
    try:
        model.backbone.load_pretrained(cfg.pretrained, strict=not cfg.allow_missing)
    except CheckpointError as err:
        raise CheckpointError(f"--pretrained: {err}") from None


def cmd_train(args):
    from ..transfer.cli import claim_run
    from .loop import TaskConfig, fit
    cfg = TaskConfig(task=args.task, backbone=args.backbone, data=args.data, out=args.out, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, train_scenes=args.train_scenes,
                     test_scenes=args.test_scenes, classes=args.classes, seed=args.seed, device=args.device,
                     pretrained=args.pretrained, allow_missing=args.allow_missing,
                     backbone_lr_scale=args.backbone_lr_scale)
    _check_pretrained(cfg)
    run = claim_run(args, f"{args.task}_{args.backbone}")
    with run:
        with run.released_on_error():
            cfg.out, cfg.data = run.path, args.data
            train_set, test_set = _splits(args)
        run.clear()
        print(f"{TASK_NAMES[args.task]} with a {args.backbone} backbone: {train_set} -> {test_set}", flush=True)
        _, history = fit(cfg, train_set, test_set, progress=not args.no_progress)
    print(json.dumps({k: v for k, v in history[-1].items() if not isinstance(v, list)}))
    print(f"checkpoint: {os.path.join(cfg.out, 'last.tvz')}")
    return 0


def _load_checkpoint(args):
    """``loop.load_checkpoint`` of ``args.checkpoint``, once it is known to be a checkpoint of
    this task (not a classifier's or the other task's: CheckpointError saying which it is)."""
    from ..serialization import load, training_checkpoint
    from .loop import load_checkpoint
    training_checkpoint(load(args.checkpoint), args.checkpoint, args.task)
    return load_checkpoint(args.checkpoint, args.device)


def cmd_eval(args):
    from .loop import evaluate
    model, cfg, _ = _load_checkpoint(args)
    _, test_set = _splits(args, cfg)
    result = evaluate(cfg.task, model, test_set, device=args.device, tta_flip=getattr(args, "tta_flip", False))
    print(json.dumps(result, indent=1))
    return 0


def _read_images(paths, size):
    """uint8 (n, size, size, 3) from image files, resized (bilinear) to size x size."""
    from PIL import Image
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in paths])


def cmd_predict(args):
    from . import draw
    model, cfg, classes = _load_checkpoint(args)
    if args.images:
        images, names = _read_images(args.images, model.img_size), [os.path.basename(p) for p in args.images]
        truths = None
    else:
        _, test_set = _splits(args, cfg)
        n = min(args.num, len(test_set))
        images, names = test_set.images[:n], [f"scene_{i:04d}" for i in range(n)]
        truths = [test_set.target(i) for i in range(n)]
    preds = model.predict(Tensor(normalize(images), device=args.device))
    os.makedirs(args.out, exist_ok=True)
    for i, (img, name) in enumerate(zip(images, names)):
        if cfg.task == "detect":
            p = preds[i]
            keep = p["scores"] >= args.threshold
            panels = [draw.draw_boxes(img, p["boxes"][keep], p["labels"][keep], classes, p["scores"][keep])]
            if truths:
                panels.append(draw.draw_boxes(img, truths[i]["boxes"], truths[i]["labels"], classes))
        else:
            panels = [draw.overlay_mask(img, preds[i])]
            if truths:
                panels.append(draw.overlay_mask(img, truths[i]["mask"]))
        path = draw.side_by_side(panels, os.path.join(args.out, os.path.splitext(name)[0] + ".png"))
        print(path)
    return 0


def add_subparsers(sub):
    """Register ``detect`` and ``segment`` (each with train, eval, predict) on ``sub``
    (from parser.add_subparsers())."""
    for task, what in TASK_NAMES.items():
        p = sub.add_parser(task, help=f"{what} on generated CIFAR-10 scenes (train, eval, predict)")
        actions = p.add_subparsers(dest="action", required=True)

        t = actions.add_parser("train", help=f"train a {what} model; writes OUT/last.tvz and OUT/metrics.json")
        t.add_argument("--backbone", choices=BACKBONES, default="resnet",
                       help="resnet: small ResNet; vit: small ViT; resnet20, vit_cifar_small: the CIFAR "
                            "classifiers' architectures, which --pretrained can initialise")
        t.add_argument("--pretrained", help="resnet20 / vit_cifar_small backbone: weights of a classification "
                                            "checkpoint of that model (e.g. runs/resnet20/best.tvz of `tinyvision train`)")
        t.add_argument("--backbone-lr-scale", type=bounded(float, 0), default=1.0,
                       help="backbone lr = scale * lr (e.g. 0.1 for a pretrained backbone)")
        t.add_argument("--allow-missing", action="store_true",
                       help="with --pretrained: load the weights that fit and start the others from random "
                            "values, instead of refusing a file whose names or shapes differ")
        t.add_argument("--data", help="CIFAR-10 source for the scenes (as for train: default a copy in "
                                      "datasets/cache/, downloaded there if missing)")
        t.add_argument("--no-download", action="store_true", help="as for train")
        t.add_argument("--overwrite", action="store_true", help="replace the run in --out (as for train)")
        t.add_argument("--epochs", type=bounded(int, 1), default=10)
        t.add_argument("--batch-size", type=bounded(int, 1), default=32)
        t.add_argument("--lr", type=bounded(float, 0, low_open=True), default=2e-3, help="AdamW peak learning rate")
        t.add_argument("--train-scenes", type=bounded(int, 1), default=8000)
        t.add_argument("--test-scenes", type=bounded(int, 1), default=1000)
        t.add_argument("--classes", type=class_list, help="CIFAR class ids of the objects: '0-4', '0,1,8' "
                                                              "(relabelled in that order; default all ten)")
        t.add_argument("--seed", type=bounded(int, 0), default=0)
        t.add_argument("--out", help=f"run folder (default: a fresh runs/{task}_BACKBONE[-N])")
        t.add_argument("--device", default="cpu")
        t.add_argument("--no-progress", action="store_true")
        t.set_defaults(fn=cmd_train, task=task)

        e = actions.add_parser("eval", help="metrics of a checkpoint on the test scenes")
        e.add_argument("checkpoint")
        e.add_argument("--data", help="CIFAR-10 source of the scenes (default: the run's, else as for train)")
        e.add_argument("--no-download", action="store_true", help="as for train")
        e.add_argument("--test-scenes", type=bounded(int, 1), help="default: the run's")
        e.add_argument("--device", default="cpu")
        if task == "segment":
            e.add_argument("--tta-flip", action="store_true",
                           help="average each scene's logits with its mirror image's (test-time augmentation)")
        e.set_defaults(fn=cmd_eval, task=task)

        r = actions.add_parser("predict", help="draw predictions as PNGs (test scenes, or the given images)")
        r.add_argument("checkpoint")
        r.add_argument("images", nargs="*", help="image files (resized to the model's input); default: test scenes")
        r.add_argument("--data", help="CIFAR-10 source of the scenes (default: the run's, else as for train)")
        r.add_argument("--no-download", action="store_true", help="as for train")
        r.add_argument("--test-scenes", type=bounded(int, 1), help="default: the run's")
        r.add_argument("--num", type=bounded(int, 1), default=8, help="how many test scenes to draw")
        r.add_argument("--threshold", type=bounded(float, 0, 1), default=0.3, help="detect: lowest score drawn")
        r.add_argument("--out", default="predictions")
        r.add_argument("--device", default="cpu")
        r.set_defaults(fn=cmd_predict, task=task)
    return sub
