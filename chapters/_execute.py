"""Runs chapter notebooks and keeps the run: ``python chapters/_execute.py [--full|--quick] NAME ...``

The notebooks in ``chapters/`` are sources, committed without outputs, each paired by jupytext
with ``chapters/NAME.py`` in percent format (``chapters/jupytext.toml``): edit either side and
run ``jupytext --sync chapters/*.ipynb``. This script refuses a pair that differs, then executes
the notebook in a fresh kernel (in its default mode, the one a student runs; ``--full`` for the
long experiments, TINYVISION_FULL=1; ``--quick`` for CI's smoke test, TINYVISION_QUICK=1), with
``chapters/`` as the working directory, and writes the executed copy, outputs and plots
included, to ``chapters/executed/NAME.ipynb``. The copy opens with a cell that says how it was
made (mode, data, machine, threads, wall time, commit), the same facts are kept in
``metadata["tinyvision_run"]``, so a reader can tell a measurement from its circumstances.

``tests/test_chapters.py`` checks every executed copy: its code cells must be the source
notebook's, cell for cell (an edited chapter needs a new run, never stale outputs under new
code), its markdown too, and no cell may have raised. Prose has no outputs, so an edit that
touches only markdown needs no new run: ``python chapters/_execute.py --sync-markdown NAME``
carries the source's markdown into the executed copy.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

import nbformat

from tinyvision.fileio import atomic_open

HERE = os.path.dirname(os.path.abspath(__file__))
EXECUTED = os.path.join(HERE, "executed")
RUN_KEY = "tinyvision_run"


def machine():
    """CPU model, cores this process may use, BLAS thread setting and, where tinyvision's
    default device is a GPU, its name, in one line."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    line = f"{model}, {cores} of {os.cpu_count()} cores, OPENBLAS_NUM_THREADS={threads}"
    device = os.environ.get("TINYVISION_DEVICE", "cpu")     # the kernel inherits it: tinyvision's default device
    if device.startswith("cuda"):
        try:
            import cupy
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
            line += f"; TINYVISION_DEVICE={device} ({name.decode() if isinstance(name, bytes) else name})"
        except Exception as e:          # no CuPy or no GPU: say so rather than claim a device
            line += f"; TINYVISION_DEVICE={device} (unavailable: {type(e).__name__})"
    return line


def commit():
    """The git commit of the sources, with '+changes' when the chapter sources (not the executed
    copies) differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!executed"], cwd=HERE, capture_output=True,
                               text=True, check=True).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def kernel_name():
    """'python3', registering ipykernel's spec for this user where it is importable but absent."""
    from jupyter_client.kernelspec import KernelSpecManager
    if "python3" not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install
        install(user=True)
    return "python3"


def data_source(nb):
    """The data sets the notebook's 'data: SOURCE: ...' lines name (CIFAR-10 or the synthetic
    stand-in), in order of first use."""
    sources = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("data:"):
                    name = re.split(r"[:;]", line[5:], maxsplit=1)[0].strip()
                    if name not in sources:
                        sources.append(name)
    return ", ".join(sources) or "none used"


def pair_difference(name, src_dir=HERE):
    """Where SRC_DIR/NAME.ipynb and its text file SRC_DIR/NAME.py (read by jupytext) differ, in
    one line: a missing .py, or the first cell whose type or source is not the same; None when
    the pair is in sync. Only the cells count: outputs and metadata live in the notebook alone."""
    import jupytext
    text = os.path.join(src_dir, name + ".py")
    if not os.path.exists(text):
        return f"{name}.ipynb has no paired {name}.py"
    notebook, paired = ([(c.cell_type, c.source) for c in nb.cells]
                        for nb in (nbformat.read(os.path.join(src_dir, name + ".ipynb"), as_version=4),
                                   jupytext.read(text)))
    for i, (a, b) in enumerate(zip(notebook, paired)):
        if a != b:
            return f"cell {i} differs between {name}.ipynb ({a[0]}) and {name}.py ({b[0]})"
    if len(notebook) != len(paired):
        return f"{name}.ipynb has {len(notebook)} cells, {name}.py {len(paired)}"
    return None


def execute(name, quick=False, timeout=None, src_dir=HERE, out_dir=EXECUTED, full=False):
    """Execute SRC_DIR/NAME.ipynb in SRC_DIR in its default mode (``full``: TINYVISION_FULL=1;
    ``quick``: TINYVISION_QUICK=1); write OUT_DIR/NAME.ipynb. Returns its path.
    Refused (ValueError) where the notebook has a paired NAME.py that differs from it."""
    import nbclient
    src = os.path.join(src_dir, name + ".ipynb")
    if not os.path.exists(src):
        raise FileNotFoundError(f"no chapter notebook {src}; the names are the files in {src_dir}")
    if os.path.exists(os.path.join(src_dir, name + ".py")) and (diff := pair_difference(name, src_dir)):
        raise ValueError(f"{diff}: run `jupytext --sync {src}` first")
    nb = nbformat.read(src, as_version=4)
    saved = {k: os.environ.get(k) for k in ("TINYVISION_QUICK", "TINYVISION_FULL", "MPLBACKEND")}
    os.environ["TINYVISION_QUICK"] = "1" if quick else "0"      # the kernel inherits this process's env
    os.environ["TINYVISION_FULL"] = "1" if full else "0"
    os.environ.setdefault("MPLBACKEND", "Agg")
    source_commit = commit()        # before the run: the sources it executes
    start = time.time()
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name=kernel_name(),
                                resources={"metadata": {"path": src_dir}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.time() - start
    run = dict(mode="quick" if quick else "full" if full else "default", data=data_source(nb), machine=machine(),
               wall_time_s=round(wall, 1), commit=source_commit,
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               python=platform.python_version())
    nb.metadata[RUN_KEY] = run
    stamp = nbformat.v4.new_markdown_cell(
        f"> **Executed copy** of `chapters/{name}.ipynb` in **{run['mode']} mode**, {run['date']}: "
        f"{wall / 60:.1f} min on {run['machine']}; data: {run['data']}; commit {run['commit']}, "
        f"Python {run['python']}. The numbers below were measured in that run.")
    stamp["id"] = "executed-run"
    nb.cells.insert(0, stamp)
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, name + ".ipynb")
    with atomic_open(out, "w", encoding="utf-8") as f:   # never half a notebook over a good one
        nbformat.write(nb, f)
    return out


def sync_markdown(name, src_dir=HERE, out_dir=EXECUTED):
    """Give OUT_DIR/NAME.ipynb the markdown of SRC_DIR/NAME.ipynb, cell by cell (matched by
    cell id), leaving its code, outputs and run stamp alone. Refused (ValueError) when the code
    differs: that copy is a run of other code and needs executing again. Returns the number of
    markdown cells changed."""
    src = nbformat.read(os.path.join(src_dir, name + ".ipynb"), as_version=4)
    path = os.path.join(out_dir, name + ".ipynb")
    nb = nbformat.read(path, as_version=4)
    code = [[c.source for c in n.cells if c.cell_type == "code"] for n in (src, nb)]
    if code[0] != code[1]:
        raise ValueError(f"{path} ran other code than its source; run `python chapters/_execute.py {name}`")
    text = {c.id: c.source for c in src.cells if c.cell_type == "markdown"}
    cells = [c for c in nb.cells if c.cell_type == "markdown" and c.id != "executed-run"]
    if sorted(c.id for c in cells) != sorted(text):
        raise ValueError(f"{path}: its markdown cells are not the source's (cells added or removed); "
                         f"run `python chapters/_execute.py {name}`")
    stale = [c for c in cells if c.source != text[c.id]]
    for c in stale:
        c.source = text[c.id]
    if stale:
        with atomic_open(path, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
    return len(stale)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", help="notebook names without .ipynb (e.g. 01_computer_vision_and_pretraining)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="full mode (TINYVISION_FULL=1): the long experiments")
    mode.add_argument("--quick", action="store_true", help="QUICK mode (TINYVISION_QUICK=1): CI's smoke test")
    p.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    p.add_argument("--sync-markdown", action="store_true",
                   help="run nothing: carry the source's markdown into the executed copy")
    args = p.parse_args(argv)
    for name in args.names:
        name = name[:-6] if name.endswith(".ipynb") else os.path.basename(name)
        if args.sync_markdown:
            print(f"{name}: {sync_markdown(name)} markdown cells updated", flush=True)
            continue
        t = time.time()
        path = execute(name, args.quick, args.timeout, full=args.full)
        print(f"wrote {os.path.relpath(path)} ({(time.time() - t) / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
