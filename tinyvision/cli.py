"""The ``tinyvision`` command: python -m tinyvision {train,eval,predict,plot,finetune,pretrain,detect,segment,models} ...
(--help on each).

Every subcommand runs through ``main``, which checks the arguments before any work starts and
turns every failure into one line on stderr and an exit status (``EXIT_STATUS``); ``--debug``
(or TINYVISION_DEBUG=1) shows the traceback instead.
"""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from . import backend
from .errors import InputError
from .progress import say
from .recipes import RECIPES, TrainConfig, check_model_kwargs

EXIT_STATUS = """exit status:
  0    done
  1    a failure while working: a file that could not be read or written (disk full, ...),
       a failed download, out of memory, a diverged run (NaN loss), or an internal error
  2    a usage or input mistake: a bad flag, a missing or unusable input file or folder
  130  interrupted (Ctrl-C)
One line on stderr says what went wrong; --debug (or TINYVISION_DEBUG=1) shows the traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser with a one-line usage error (status 2), like every other failure;
    subcommands' parsers are of the same class (add_subparsers takes the parent's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_train_args(p):
    p.add_argument("--model", help="model name (see `python -m tinyvision models`; default: the recipe's, "
                                   "else resnet20)")
    p.add_argument("--data", help="CIFAR-10: the official cifar-10-python.tar.gz, its extracted folder, or the "
                                  "JPEG copy (folder or .tar.gz with train/<class>/ and test/<class>/); default: "
                                  "a copy in datasets/cache/, else the official archive downloaded there")
    p.add_argument("--no-download", action="store_true",
                   help="without --data, stop instead of downloading CIFAR-10 when datasets/cache/ has no copy")
    p.add_argument("--out", help="run folder (default: a fresh runs/MODEL, runs/MODEL-2, ...)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out (its checkpoints and metrics) instead of refusing")
    p.add_argument("--epochs", type=_count, help="default: the recipe's")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="default: the model's own")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "constant", "triangle"])
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--clip-grad", type=float, help="max global gradient norm (0: off)")
    p.add_argument("--batch-size", type=int,
                   help="default: the recipe's; without --lr, the recipe's lr scales with it (lr x B / recipe's B)")
    p.add_argument("--augment", choices=["none", "flip", "crop_flip", "crop_flip_cutout", "translate2_flip"])
    p.add_argument("--norm-bias-lr-scale", type=float, metavar="X", help="batch norm biases at lr x X")
    p.add_argument("--whitening-images", type=int, metavar="N",
                   help="set the model's whitening conv from N training images (0: off, the conv is learned)")
    p.add_argument("--whiten-bias-epochs", type=int, metavar="N",
                   help="train the whitening conv's bias N epochs, then freeze it")
    p.add_argument("--lookahead-every", type=int, metavar="K", help="lookahead every K steps (0: off)")
    p.add_argument("--alternating-flip", action=argparse.BooleanOptionalAction,
                   help="mirror each image every other epoch instead of at random (default: the recipe's)")
    p.add_argument("--model-arg", type=_model_arg, action="append", metavar="KEY=VALUE",
                   help="a keyword for the model's builder, VALUE as JSON else a string (repeatable; "
                        "e.g. --model-arg width_mult=1.5 --model-arg identity_init=false)")
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
                   help="test every K epochs and after the last (default: the recipe's): saves the test pass's time")
    p.add_argument("--progressive", type=_progressive, metavar="SIZE:EPOCH[,SIZE:EPOCH...]",
                   help="progressive resizing: train on SIZE x SIZE random crops through epoch EPOCH, "
                        "then the next phase, then whole images (e.g. 24:18: 24-pixel crops for epochs 1-18)")
    p.add_argument("--bn-recalibration", type=int, metavar="N",
                   help="with --progressive: before testing a crop epoch, re-estimate batch norm's "
                        f"statistics on N whole training images (default {TrainConfig().bn_recalibration}; 0: off)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _count(text):
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _model_arg(text):
    """'width_mult=1.5' -> ('width_mult', 1.5): the value as JSON (numbers, true/false, lists),
    else the text itself ('name=relu' -> 'relu')."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a keyword of the model, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


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


def _device(name):
    """``--device`` as ``backend.check_device`` normalises it ('gpu' -> 'cuda'), or an InputError
    that names the flag and, for a GPU this machine cannot use, how to get one."""
    try:
        return backend.check_device(name)
    except ValueError:
        raise InputError(f"--device: expected cpu or cuda, got {name!r}") from None
    except RuntimeError:  # no CuPy, no GPU or no driver
        raise InputError('--device cuda: CuPy and an NVIDIA GPU are not available here; install CuPy with '
                         'pip install -e ".[gpu]" in the tinyvision folder, on a machine with a CUDA driver, '
                         'or use --device cpu') from None


def _output_folder(path, flag):
    """``path`` as a folder this process can write into, checked before any work, so that a long
    evaluation never ends in an unwritable folder. A missing folder is made if its parent exists
    (as mkdir does: a mistyped path is not made)."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{flag} {path}: is a file, expected a folder")
    if not os.path.isdir(parent):
        raise InputError(f"{flag} {path}: its parent {parent} is not an existing folder")
    try:
        if not os.path.isdir(path):
            os.mkdir(path)
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot make the folder ({err.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: the folder is not writable")
    return path


def _read_image(path):
    """The RGB pixels (H, W, 3) uint8 of an image file, or an InputError naming it: missing,
    not an image, truncated, or a decompression bomb (more pixels than PIL's limit)."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as err:  # missing, a folder, unreadable, not an image (UnidentifiedImageError), truncated
        raise InputError(f"image {path}: {err.strerror or err}") from None
    except (ValueError, EOFError, SyntaxError, Image.DecompressionBombError) as err:
        raise InputError(f"image {path}: {err}") from None


def _data(path, no_download, progress=True):
    """The CIFAR-10 source of --data, else a cached copy, else a download (data.resolve_cifar10)."""
    from .data import resolve_cifar10
    return resolve_cifar10(path, download=not no_download, progress=progress)


def _trainer_class(cfg):
    """The loop a resolved config needs: the speed run's, crop phases', else the plain one."""
    from .progressive import ProgressiveTrainer
    from .speedrun import SpeedrunTrainer
    from .train import Trainer
    return SpeedrunTrainer if SpeedrunTrainer.follows(cfg) else ProgressiveTrainer if cfg.progressive else Trainer


def _train_config(args):
    """(TrainConfig, note) of the train command's flags: None leaves a field to the recipe;
    --model-arg pairs make model_kwargs; --batch-size without --lr scales the recipe's rate
    (``TrainConfig.lr_for_batch_size``, whose line the note is, else None)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None},
                      model_kwargs=dict(args.model_arg or ()))
    return cfg.lr_for_batch_size()


def cmd_train(args):
    from .serialization import classifier_checkpoint, load
    progress = not args.no_progress
    if args.resume:
        overrides = {"epochs": args.epochs} if args.epochs is not None else {}
        if args.data is not None:
            overrides["data"] = _data(args.data, True)
        # the saved config decides the loop (no last.tvz: Trainer.resume says so)
        last = os.path.join(args.resume, "last.tvz")
        saved = TrainConfig(**classifier_checkpoint(load(last), last)["config"]) if os.path.isfile(last) else TrainConfig()
        trainer = _trainer_class(saved).resume(args.resume, progress=progress, **overrides)
    else:
        cfg, lr_note = _train_config(args)
        # every option checked before the data is looked for (and perhaps downloaded)
        resolved = cfg.resolved()
        check_model_kwargs(resolved.model, resolved.model_kwargs)
        trainer_class = _trainer_class(resolved)
        if lr_note:
            say(lr_note)
        cfg.data = _data(args.data, args.no_download, progress)
        trainer = trainer_class(cfg, progress=progress, overwrite=args.overwrite)
    trainer.fit()
    print(trainer.summary())
    return 0


def cmd_eval(args):
    from . import data, metrics
    from .fileio import write_json
    from .evaluate import load_checkpoint_model, predict_logits, tta_border
    from .recipes import build_transform
    model, cfg, classes = load_checkpoint_model(args.checkpoint, args.device)
    # the shift is checked as a training run's is, against this checkpoint's model
    TrainConfig(model=cfg.model, model_kwargs=cfg.model_kwargs, tta_shift=args.tta_shift).resolved()
    out_dir = _output_folder(args.out or os.path.dirname(os.path.abspath(args.checkpoint)),
                             "--out" if args.out else "the checkpoint's folder (choose another with --out)")
    recorded = cfg.data if args.data is None and cfg.data and os.path.exists(cfg.data) else None
    test_set = data.CIFAR10(_data(args.data or recorded, args.no_download), train=False)
    loader = data.DataLoader(test_set, batch_size=500, device=args.device,
                             transform=build_transform("none", model.default_cfg["mean"], model.default_cfg["std"]))
    logits, targets = predict_logits(model, loader, tta_flip=args.tta_flip, tta_shift=args.tta_shift,
                                     border=tta_border(cfg.augment))
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
    png = os.path.join(out_dir, "confusion_matrix.png")
    metrics.plot_confusion_matrix(cm, classes, path=png)
    write_json(os.path.join(out_dir, "eval.json"), report)
    print(f"wrote {png} and eval.json")
    return 0


def cmd_predict(args):
    from PIL import Image
    from . import ops
    from .data import Normalize, ToTensor
    from .tensor import Tensor, no_grad
    from .evaluate import load_checkpoint_model
    pixels = [_read_image(path) for path in args.images]  # every image checked before the model loads
    model, cfg, classes = load_checkpoint_model(args.checkpoint, args.device)
    height, width = model.default_cfg["input_size"][1:]
    images = np.stack([np.asarray(Image.fromarray(p).resize((width, height), Image.BILINEAR)) for p in pixels])
    batch = Normalize(model.default_cfg["mean"], model.default_cfg["std"])(ToTensor()(images))
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
    parser = _Parser(prog="python -m tinyvision", epilog=EXIT_STATUS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Train, evaluate and use ResNet and ViT models on CIFAR-10.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model on CIFAR-10",
                       description="Train a model on CIFAR-10; writes metrics.csv, checkpoints and config to --out.")
    _add_train_args(p)
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("eval", help="accuracy, per-class precision/recall/F1 and a confusion matrix")
    p.add_argument("checkpoint")
    p.add_argument("--data", help="CIFAR-10 location (default: the one the run trained on, else as for train)")
    p.add_argument("--no-download", action="store_true", help="as for train")
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
    _add_debug_flag(parser, default=False)
    return parser


def _add_debug_flag(parser, default):
    """--debug on ``parser`` and, so that it may also follow the subcommand, on every
    subcommand's parser (there without a default, so that it never unsets the top-level flag)."""
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the Python traceback of a failure (also TINYVISION_DEBUG=1)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _add_debug_flag(subparser, default=argparse.SUPPRESS)


def describe_failure(err):
    """(exit status, one line) for an exception that ended a command (see EXIT_STATUS)."""
    if isinstance(err, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(err, OSError) and err.strerror:  # the system's reason, and the file where it has one
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        text = ": ".join([" -> ".join(names), err.strerror] if names else [err.strerror])
    elif isinstance(err, MemoryError):
        text = f"out of memory{f' ({err})' if str(err) else ''}; try a smaller --batch-size"
    else:
        text = str(err) or type(err).__name__
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if isinstance(err, (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return 2, f"error: {text}"
    if isinstance(err, (OSError, MemoryError, FloatingPointError)):
        return 1, f"error: {text}"
    return 1, f"internal error ({type(err).__name__}: {text}); rerun with --debug for the traceback"


def run(args, debug=False):
    """Run the parsed command ``args`` and return its exit status; a failure prints one line on
    stderr (``describe_failure``) unless ``debug``, which re-raises it."""
    prog = " ".join(["python -m tinyvision", args.command, getattr(args, "action", None) or ""]).strip()
    try:
        if getattr(args, "tf32", False):  # CuPy reads it when it first loads, so before the device check
            os.environ["CUPY_TF32"] = "1"
        if getattr(args, "device", None) is not None:
            args.device = _device(args.device)
        return args.fn(args)
    except (KeyboardInterrupt, Exception) as err:
        if debug:
            raise
        status, line = describe_failure(err)
        print(f"{prog}: {line}", file=sys.stderr, flush=True)
        return status


def main(argv=None):
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("TINYVISION_DEBUG", "") not in ("", "0")
    sys.exit(run(args, debug))
