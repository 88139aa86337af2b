"""Collect the speed-run recipe's runs into docs/results/speedrun_cpu.json (read by chapter 5).

    python benchmarks/speedrun_results.py --runs runs/speedrun_seed0 runs/speedrun_seed1 \\
        --ablation "the recipe||runs/abl_full" --ablation "whitening init|--whitening-images 0|runs/abl_nowhiten"

Each run folder holds the config.json and metrics.csv of a ``train`` run. Training minutes are
the sum of the epochs' times (no test passes); process minutes the wall time after the last
epoch's test and TTA. Seeds' per-epoch metrics are copied beside the JSON.
"""
import argparse
import json
import os
import platform
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tinyvision.fileio import write_json  # noqa: E402
from tinyvision.plots import read_metrics  # noqa: E402

RESULTS = os.path.join(ROOT, "docs", "results")


def summary(run_dir):
    """One run's numbers: config, last test accuracies, training and process minutes."""
    rows = read_metrics(run_dir)
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    last = rows[-1]
    return cfg, {"epochs": len(rows), "test_acc": last["test_acc"], "tta_test_acc": last.get("tta_test_acc"),
                 "train_minutes": round(sum(r["epoch_time"] for r in rows) / 60, 2),
                 "process_minutes": round(last["wall_time"] / 60, 2)}


def machine():
    """'<CPU model>, N cores' from /proc/cpuinfo (Linux), else the platform's processor."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]}, {len(names)} cores"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="the recipe's full runs, one per seed")
    p.add_argument("--ablation", action="append", default=[], metavar="TRICK|FLAGS|DIR",
                   help="a shortened run with one trick off (the first: the recipe itself)")
    p.add_argument("--date", required=True)
    p.add_argument("--command", default="python -m tinyvision train --recipe speedrun_cpu "
                   "--data datasets/cache/cifar10-jpeg.tar.gz --seed SEED", help="the command of --runs")
    p.add_argument("--blas", required=True, help="the BLAS and kernels the runs used")
    p.add_argument("--earlier", action="append", default=[], metavar="JSON",
                   help="an earlier run of the recipe, as a JSON object (epochs, test_acc, tta_test_acc, "
                        "train_minutes, note); repeatable")
    p.add_argument("--results", default=RESULTS, help="where the JSON and the metrics go (default docs/results)")
    args = p.parse_args(argv)
    runs = []
    for run_dir in args.runs:
        cfg, numbers = summary(run_dir)
        csv = f"cpu_speedrun_cpu_seed{cfg['seed']}_metrics.csv"
        shutil.copyfile(os.path.join(run_dir, "metrics.csv"), os.path.join(args.results, csv))
        runs.append({"seed": cfg["seed"], **numbers, "metrics": "docs/results/" + csv})
    out = {"machine": machine(), "date": args.date, "blas": args.blas,
           "command": args.command,
           "runs": runs}
    if args.ablation:
        rows, epochs, seed = [], None, None
        for spec in args.ablation:
            trick, flags, run_dir = spec.split("|")
            cfg, numbers = summary(run_dir)
            epochs, seed = numbers.pop("epochs"), cfg["seed"]
            rows.append({"trick": trick, "flags": flags, **numbers})
        out["ablations"] = {"epochs": epochs, "seed": seed, "rows": rows,
                            "command": f"python -m tinyvision train --recipe speedrun_cpu --epochs {epochs} "
                                       "FLAGS"}
    if args.earlier:
        out["earlier"] = [json.loads(e) for e in args.earlier]
    write_json(os.path.join(args.results, "speedrun_cpu.json"), out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
