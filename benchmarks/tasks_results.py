"""Detection AP and segmentation mIoU on generated CIFAR-10 scenes, ResNet and ViT backbones.

    python benchmarks/tasks_results.py --data datasets/cache/cifar10-jpeg.tar.gz [--only detect:resnet ...]
        [--pretrained resnet20=runs/resnet20/best.tvz --backbone-lr-scale 0.1] [--tta-flip]

Trains each (task, backbone) pair with ``tinyvision.tasks.loop.fit``, writes
OUT/<task>_<backbone>/ (checkpoint, metrics.json) and OUT/results_<pairs>.json, and prints a
markdown table: AP@0.5, AP@[.5:.95], precision and recall at IoU 0.5 for detection; mIoU and
pixel accuracy for segmentation (with --tta-flip also scored with each scene averaged with its
mirror image: the "mIoU flip" column); training wall time.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinyvision.fileio import write_json  # noqa: E402
from tinyvision.tasks.backbones import BACKBONES  # noqa: E402
from tinyvision.tasks.loop import TaskConfig, evaluate, fit  # noqa: E402
from tinyvision.tasks.scenes import scene_splits  # noqa: E402
from tinyvision.transfer.splits import parse_classes  # noqa: E402

PAIRS = [f"{task}:{backbone}" for backbone in BACKBONES for task in ("detect", "segment")]


def backbone_weights(items):
    """['resnet20=runs/a.tvz', ...] -> {'resnet20': 'runs/a.tvz', ...}"""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in BACKBONES:
            raise SystemExit(f"--pretrained takes BACKBONE=CHECKPOINT with a backbone of {BACKBONES}, got {item!r}")
        out[name] = path
    return out


def table(results):
    lines = ["| task | backbone | AP@0.5 | AP@[.5:.95] | P@0.5 | R@0.5 | mIoU | mIoU flip | pixel acc. | train scenes x epochs | wall time |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        m = r["metrics"]
        cell = lambda k: f"{m[k]:.3f}" if k in m else ""
        backbone = r["backbone"] + (" (pretrained)" if r.get("pretrained") else "")
        flip = f"{r['metrics_tta_flip']['miou']:.3f}" if "metrics_tta_flip" in r else ""
        lines.append(f"| {r['task']} | {backbone} | {cell('ap50')} | {cell('ap')} | {cell('precision')} | "
                     f"{cell('recall')} | {cell('miou')} | {flip} | {cell('pixel_accuracy')} | "
                     f"{r['train_scenes']} x {r['epochs']} | {m['wall_time'] / 60:.1f} min |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="datasets/cache/cifar10-jpeg.tar.gz")
    p.add_argument("--out", default="runs/tasks_results")
    p.add_argument("--only", nargs="+", choices=PAIRS, default=PAIRS[:4])
    p.add_argument("--pretrained", nargs="+", metavar="BACKBONE=CKPT",
                   help="classification checkpoints that start these backbones, e.g. resnet20=runs/resnet20/best.tvz")
    p.add_argument("--backbone-lr-scale", type=float, default=1.0, help="for the pretrained backbones")
    p.add_argument("--train-scenes", type=int, default=8000)
    p.add_argument("--test-scenes", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--classes", type=parse_classes, help="CIFAR class ids of the objects (default all ten)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--tta-flip", action="store_true", help="segmentation: also score with flip test-time augmentation")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    weights = backbone_weights(args.pretrained)
    train_set, test_set = scene_splits(args.data, args.train_scenes, args.test_scenes, classes=args.classes)
    results = []
    for pair in args.only:
        task, backbone = pair.split(":")
        cfg = TaskConfig(task=task, backbone=backbone, data=args.data, out=os.path.join(args.out, f"{task}_{backbone}"),
                         epochs=args.epochs, batch_size=args.batch_size, train_scenes=args.train_scenes,
                         test_scenes=args.test_scenes, classes=args.classes, device=args.device,
                         pretrained=weights.get(backbone),
                         backbone_lr_scale=args.backbone_lr_scale if backbone in weights else 1.0)
        model, history = fit(cfg, train_set, test_set, progress=not args.no_progress)
        results.append(dict(task=task, backbone=backbone, classes=train_set.classes, pretrained=cfg.pretrained,
                            train_scenes=args.train_scenes, epochs=args.epochs, device=args.device,
                            metrics=history[-1]))
        if args.tta_flip and task == "segment":
            results[-1]["metrics_tta_flip"] = evaluate(task, model, test_set, device=args.device, tta_flip=True)
    os.makedirs(args.out, exist_ok=True)
    name = "results_" + "_".join(s.replace(":", "-") for s in args.only) + ".json"
    write_json(os.path.join(args.out, name), results)
    print(table(results))


if __name__ == "__main__":
    main()
