"""Markdown results table from training runs' metrics.csv files.

    python benchmarks/results_table.py runs/resnet20_cpu runs/vit_cifar_small_cpu

One row per run: model, epochs, wall time, final and best test accuracy, images/s, and the
test accuracy after each quarter of the run (the learning curve in four numbers).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tinyvision.plots import read_metrics  # noqa: E402


def row(run_dir):
    rows = read_metrics(run_dir)
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    last = rows[-1]
    curve = " / ".join(f"{100 * rows[max(0, round(q * len(rows)) - 1)]['test_acc']:.1f}" for q in (0.25, 0.5, 0.75, 1.0))
    ips = sum(r["images_per_s"] for r in rows) / len(rows)
    return (f"| {cfg['model']} | {len(rows)} | {last['wall_time'] / 60:.0f} min | "
            f"{100 * last['test_acc']:.2f}% | {100 * max(r['test_acc'] for r in rows):.2f}% | {ips:.0f} | {curve} |")


def main():
    print("| model | epochs | wall time | final test acc | best test acc | mean images/s | test acc at 1/4, 1/2, 3/4, end |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for run_dir in sys.argv[1:]:
        print(row(run_dir))


if __name__ == "__main__":
    main()
