"""Scratch vs self-supervised pretraining vs supervised 5 -> 5 class transfer, on the CPU.

    nice -n 15 python benchmarks/transfer_experiment.py --data datasets/cache/cifar10-jpeg.tar.gz
    python benchmarks/transfer_experiment.py --data PATH --quick      # a one-minute smoke run

Writes OUT/results.json, OUT/results.md (table + verdicts) and every run's folder. The
budgets below take about 10 minutes of an idle 2-core CPU (2-4x that while other jobs run);
see tinyvision/transfer/experiment.py for what is compared and how.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyvision.fileio import atomic_open, write_json  # noqa: E402
from tinyvision.transfer.experiment import ModelPlan, markdown_table, run_experiment  # noqa: E402

RESNET = dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
              warmup_epochs=0, label_smoothing=0.0, clip_grad=0.0, batch_size=50, augment="crop_flip")
VIT = dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, schedule="cosine", warmup_epochs=1,
           label_smoothing=0.1, clip_grad=1.0, batch_size=50, augment="crop_flip")


def plans(quick):
    if quick:
        small = dict(batch_size=8)
        return [ModelPlan("resnet20", dict(RESNET, **small), ("rotation",), 4, 1, {0.05: 2}),
                ModelPlan("vit_cifar_tiny", dict(VIT, **small), ("position", "mae"), 4, 1, {0.05: 2})]
    # Budgets: supervised pretraining on half (ResNet) or all (ViT) of classes 0-4, pretext
    # pretraining on 10,000 (ResNet) or 25,000 (ViT) unlabelled images; fine-tuning at 1%, 10%
    # and 100% of the target labels. About 40 min (ResNet) + 15 min (ViT) on one core.
    return [
        ModelPlan("resnet20", RESNET, ("rotation",), pretrain_per_class=2500, pretrain_epochs=4,
                  finetune_epochs={0.01: 8, 0.1: 4, 1.0: 3}, pretrain_recipe=dict(batch_size=100, lr=0.1),
                  ssl_per_class=1000),
        ModelPlan("vit_cifar_tiny", VIT, ("position", "mae"), pretrain_per_class=2500, pretrain_epochs=8,
                  finetune_epochs={0.01: 15, 0.1: 6, 1.0: 6}, pretrain_recipe=dict(batch_size=100)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="datasets/cache/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", default="runs/transfer_experiment")
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the pipeline, measures nothing")
    parser.add_argument("--models", nargs="+", help="run only these plans (e.g. vit_cifar_tiny)")
    args = parser.parse_args()
    chosen = [p for p in plans(args.quick) if not args.models or p.model in args.models]
    t0 = time.perf_counter()
    results = run_experiment(chosen, args.data, args.out, args.seed, args.test_per_class,
                             log=lambda s: print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {s}", flush=True))
    results["wall_seconds"] = time.perf_counter() - t0
    write_json(os.path.join(args.out, "results.json"), results)
    v = results["verdicts"]
    md = [markdown_table(results), "", "Pretraining:", ""]
    md += [f"- {k}: " + ", ".join(f"{a} {b:.3f}" if isinstance(b, float) else f"{a} {b}" for a, b in r.items())
           for k, r in results["pretraining"].items()]
    md += ["", "Claims:", ""] + [f"- **{k}**: {v[k]}" for k in ("reuse of data", "better performance",
                                                                "less overfitting", "faster training")]
    md += ["", "Evidence:", ""] + [f"- {e}" for e in v["evidence"]]
    md += ["", f"Total wall time: {results['wall_seconds'] / 60:.1f} min"]
    with atomic_open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
