"""The ``tinyvision`` command: python -m tinyvision {train,eval,predict,plot,finetune,pretrain,detect,segment,models} ...
(--help on each)."""
import argparse
import dataclasses
import os
import sys

import numpy as np

from .train import TrainConfig


def _add_train_args(p):
    defaults = TrainConfig()
    p.add_argument("--model", default=defaults.model, help="model name (see `python -m tinyvision models`)")
    p.add_argument("--data", default=defaults.data,
                   help="CIFAR-10: the official cifar-10-python.tar.gz, its extracted folder, or the "
                        "JPEG copy (folder or .tar.gz with train/<class>/ and test/<class>/)")
    p.add_argument("--out", default=None, help="run folder (default runs/MODEL)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--recipe", choices=["resnet_sgd", "vit_adamw"], help="default: the model's own")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "constant"])
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--clip-grad", type=float, help="max global gradient norm (0: off)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--augment", choices=["none", "flip", "crop_flip", "crop_flip_cutout"])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--tf32", action="store_true",
                   help="GPU: TF32 tensor cores for 2-D float32 GEMMs (sets CUPY_TF32=1 before CuPy loads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, help="train on K images per class")
    p.add_argument("--test-subset", type=int, help="evaluate on K images per class")
    p.add_argument("--tta-flip", action="store_true", help="evaluate on each image and its mirror")
    p.add_argument("--tta-shift", type=int, metavar="PX",
                   help="also average over the image moved PX pixels up, down, left and right")
    p.add_argument("--eval-every", type=int, metavar="K",
                   help=f"test every K epochs and after the last (default {defaults.eval_every}): "
                        "saves the test pass's time")
    p.add_argument("--progressive", type=_progressive, metavar="SIZE:EPOCH[,SIZE:EPOCH...]",
                   help="progressive resizing: train on SIZE x SIZE random crops through epoch EPOCH, "
                        "then the next phase, then whole images (e.g. 24:18: 24-pixel crops for epochs 1-18)")
    p.add_argument("--bn-recalibration", type=int, metavar="N",
                   help="with --progressive: before testing a crop epoch, re-estimate batch norm's "
                        f"statistics on N whole training images (default {defaults.bn_recalibration}; 0: off)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _progressive(text):
    """'24:18' or '20:6,24:16' -> [[24, 18]] or [[20, 6], [24, 16]]."""
    try:
        phases = [[int(v) for v in phase.split(":")] for phase in text.split(",")]
        if all(len(phase) == 2 for phase in phases):
            return phases
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected SIZE:EPOCH pairs separated by commas (e.g. 24:18), "
                                     f"got {text!r}")


def cmd_train(args):
    if args.tf32:  # CuPy reads it when it first loads, so before anything touches the GPU
        os.environ["CUPY_TF32"] = "1"
    from .train import Trainer
    try:  # a bad option or a missing data file: one line that says what is wrong, no traceback
        if args.resume:
            trainer = Trainer.resume(args.resume, progress=not args.no_progress,
                                     **({"epochs": args.epochs} if args.epochs != TrainConfig().epochs else {}))
        else:
            fields = {f.name for f in dataclasses.fields(TrainConfig)}
            values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
            values["out"] = args.out or os.path.join("runs", args.model)
            trainer = Trainer(TrainConfig(**values), progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
        print(f"python -m tinyvision train: error: {err}", file=sys.stderr)
        return 2
    try:
        trainer.fit()
    except KeyboardInterrupt:
        return 130
    print(trainer.summary())
    return 0


def cmd_eval(args):
    from . import data, metrics
    from .fileio import write_json
    from .train import build_transform, load_checkpoint_model, predict_logits
    model, cfg, classes = load_checkpoint_model(args.checkpoint, args.device)
    test_set = data.CIFAR10(args.data or cfg.data, train=False)
    loader = data.DataLoader(test_set, batch_size=500, device=args.device,
                             transform=build_transform("none", model.default_cfg["mean"], model.default_cfg["std"]))
    logits, targets = predict_logits(model, loader, tta_flip=args.tta_flip, tta_shift=args.tta_shift)
    preds = logits.argmax(axis=1)
    precision, recall, f1 = metrics.precision_recall_f1(preds, targets, len(classes))
    cm = metrics.confusion_matrix(preds, targets, len(classes))
    report = {"accuracy": metrics.accuracy(logits, targets),
              "top5_accuracy": metrics.topk_accuracy(logits, targets, 5),
              "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f)}
                            for c, p, r, f in zip(classes, precision, recall, f1)},
              "macro_f1": float(np.mean(f1)),
              "tta": {"flip": args.tta_flip, "shift": args.tta_shift}}
    print(f"accuracy {report['accuracy']:.4f}  top-5 {report['top5_accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}")
    print(f"{'class':>12} {'precision':>9} {'recall':>7} {'F1':>6}")
    for c, m in report["per_class"].items():
        print(f"{c:>12} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f}")
    out_dir = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    png = os.path.join(out_dir, "confusion_matrix.png")
    metrics.plot_confusion_matrix(cm, classes, path=png)
    write_json(os.path.join(out_dir, "eval.json"), report)
    print(f"wrote {png} and eval.json")
    return 0


def cmd_predict(args):
    from PIL import Image
    from . import ops
    from .data import Normalize, ToTensor
    from .tensor import no_grad
    from .train import load_checkpoint_model
    model, cfg, classes = load_checkpoint_model(args.checkpoint, args.device)
    size = model.default_cfg["input_size"][1:]
    images = []
    for path in args.images:
        try:
            img = Image.open(path).convert("RGB")
        except (OSError, ValueError) as exc:
            raise SystemExit(f"cannot read image {path!r}: {exc}")
        images.append(np.asarray(img.resize(size[::-1], Image.BILINEAR), dtype=np.uint8))
    batch = Normalize(model.default_cfg["mean"], model.default_cfg["std"])(ToTensor()(np.stack(images)))
    from .tensor import Tensor
    with no_grad():
        probs = ops.softmax(model(Tensor(batch, device=args.device)), axis=1).numpy()
    k = min(5, len(classes))
    for path, p in zip(args.images, probs):
        top = np.argsort(-p)[:k]
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.3f}" for i in top))
    return 0


def cmd_plot(args):
    from .plots import plot_learning_curves
    runs = {os.path.basename(os.path.normpath(r)): r for r in args.run_dirs}
    path = args.out or os.path.join(args.run_dirs[0], "learning_curves.png")
    plot_learning_curves(runs, path, x="wall_time" if args.wall_time else "epoch")
    print(f"wrote {path}")
    return 0


def cmd_models(args):
    from . import models
    for name in models.list_models(args.pattern):
        print(name)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinyvision",
                                     description="Train, evaluate and use ResNet and ViT models on CIFAR-10.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model on CIFAR-10",
                       description="Train a model on CIFAR-10; writes metrics.csv, checkpoints and config to --out.")
    _add_train_args(p)
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("eval", help="accuracy, per-class precision/recall/F1 and a confusion matrix")
    p.add_argument("checkpoint")
    p.add_argument("--data", help="CIFAR-10 location (default: the one the run trained on)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tta-flip", action="store_true", help="average over each image and its mirror")
    p.add_argument("--tta-shift", type=int, default=0, metavar="PX",
                   help="also average over the image moved PX pixels up, down, left and right (2 is a good start)")
    p.add_argument("--out", help="folder for confusion_matrix.png and eval.json (default: the checkpoint's)")
    p.set_defaults(fn=cmd_eval)
    p = sub.add_parser("predict", help="top-5 classes for image files")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=cmd_predict)
    p = sub.add_parser("plot", help="learning curves PNG of one or more runs")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", help="PNG path (default RUN_DIR/learning_curves.png)")
    p.add_argument("--wall-time", action="store_true", help="x axis: wall time instead of epochs")
    p.set_defaults(fn=cmd_plot)
    from .tasks.cli import add_subparsers as add_task_commands
    from .transfer.cli import add_subparsers as add_transfer_commands
    add_transfer_commands(sub)
    add_task_commands(sub)
    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("pattern", nargs="?")
    p.set_defaults(fn=cmd_models)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.exit(args.fn(args))
