"""The README's CPU performance table: every benchmark model, training and inference, against
PyTorch, each measurement in a fresh process (so memory readings are its own).

    python benchmarks/perf_table.py [--models resnet20 resnet56 vit_cifar_small vit_lite_7_4]
                                    [--steps 8] [--json docs/results/perf_cpu.json]

Each row is ``train_step.py --vs-torch``: both libraries build the model, then alternate step
by step on the same threads. Prints a markdown table and the machine it ran on.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from tinyvision.fileio import write_json  # noqa: E402

MODELS = ["resnet20", "resnet56", "vit_cifar_small", "vit_lite_7_4"]


def run(model, inference, steps, batch_size, torch):
    """One train_step.py measurement in its own process; its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        cmd = [sys.executable, os.path.join(HERE, "train_step.py"), "--model", model, "--steps", str(steps),
               "--batch-size", str(batch_size), "--no-breakdown", "--json", path]
        cmd += ["--inference"] if inference else []
        cmd += ["--vs-torch"] if torch else []
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(results):
    torch = any("ratio" in r for r in results)
    lines = ["| model | mode | tinyvision images/s | " + ("PyTorch images/s | ratio | " if torch else "")
             + "peak RSS | RSS after warm-up -> 3 more steps |",
             "| --- | --- | ---: | " + ("---: | ---: | " if torch else "") + "---: | --- |"]
    for r in results:
        cells = [r["model"], r["mode"], f"{r['images_per_s']:.0f}"]
        if torch:
            cells += [f"{r['torch_images_per_s']:.0f}", f"{r['ratio']:.2f}"] if "ratio" in r else ["-", "-"]
        cells += [f"{r['peak_rss_mb']:.0f} MB", f"{r['rss_after_warmup_mb']:.0f} -> {r['rss_after_3_more_mb']:.0f} MB"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-torch", action="store_true", help="tinyvision alone (no PyTorch installed)")
    p.add_argument("--json", help="also write every measurement to this JSON file")
    args = p.parse_args(argv)
    results = []
    for model in args.models:
        for inference in (False, True):
            results.append(run(model, inference, args.steps, args.batch_size, not args.no_torch))
            print(f"measured {model} {results[-1]['mode']}", file=sys.stderr, flush=True)
    first = results[0]
    machine = (f"{cpu_name()}, {first['threads']} thread(s), NumPy {first['numpy']}, Python "
               f"{platform.python_version()}" + (f", PyTorch {first['torch']}" if "torch" in first else ""))
    print(f"Batch {args.batch_size}; {machine}.\n")
    print(table(results))
    if args.json:
        write_json(args.json, dict(machine=machine, results=results))


if __name__ == "__main__":
    main()
