"""Plots of training runs (learning curves from a run's metrics.csv) and atomic figure saving."""
import csv
import os

from .errors import InputError
from .fileio import atomic_open


def read_metrics(run_dir, columns=("epoch",)):
    """The rows of RUN_DIR/metrics.csv as dicts of floats; a field left empty (the test numbers
    of an epoch that was not tested) is left out.

    Raises InputError naming the folder or file when there is no run there, or when the file is
    not a whole metrics table with ``columns`` filled in every row (truncated, edited, binary):
    a plot of half a table would mislead, and a bare ValueError would not say which file.
    """
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.isdir(run_dir):
        raise InputError(f"{run_dir}: no such folder; expected the --out folder of a training run")
    if not os.path.exists(path):
        raise InputError(f"no metrics.csv in {run_dir}: is it the --out folder of a training run?")
    rows = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            absent = [c for c in columns if c not in (reader.fieldnames or [])]
            if absent:
                raise ValueError(f"no {', '.join(absent)} column")
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError(f"line {reader.line_num} does not have the header's {len(reader.fieldnames)} "
                                     "fields (a truncated file?)")
                rows.append({k: float(v) for k, v in row.items() if v != ""})
                missing = [c for c in columns if c not in rows[-1]]
                if missing:
                    raise ValueError(f"line {reader.line_num} has no {', '.join(missing)}")
    except (ValueError, csv.Error) as err:  # also a number cut short, and bytes that are not text
        raise InputError(f"{path}: not a readable metrics table of a training run ({err})") from None
    return rows


def plot_learning_curves(runs, path=None, x="epoch"):
    """Loss and accuracy against ``x`` ('epoch' or 'wall_time') for one or more runs.

    Args:
        runs: a run folder, or a dict label -> run folder, to compare runs in one figure.
        path: where to save the PNG (written atomically); None to only return the figure.
    Returns:
        the matplotlib Figure.
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    runs = {os.path.basename(os.path.normpath(runs)): runs} if isinstance(runs, str) else dict(runs)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for n, (label, run_dir) in enumerate(runs.items()):
        rows = read_metrics(run_dir, columns=(x, "train_loss", "train_acc"))
        xs = [r[x] / (60 if x == "wall_time" else 1) for r in rows]
        # runs with --eval-every K skip some epochs; markers show where the test was measured
        tested = [i for i, r in enumerate(rows) if "test_acc" in r]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):  # one colour per run on both axes
            ax.plot(xs, [r[f"train_{key}"] for r in rows], color=f"C{n}", label=f"{label} train")
            ax.plot([xs[i] for i in tested], [rows[i][f"test_{key}"] for i in tested], "--o", ms=3,
                    color=f"C{n}", label=f"{label} test")
    xlabel = "wall time (min)" if x == "wall_time" else "epoch"
    for ax, name in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path, dpi=120):
    """Write a figure as PNG through ``atomic_open``: never half an image."""
    with atomic_open(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
