"""Writes the chapter notebooks (``python chapters/_build.py``), without outputs.

Each notebook is a list of cells: strings starting with ``"md:"`` become markdown cells, the
others code cells. The notebooks are the committed artefact; edit here and rebuild.
"""
import os
import sys
import textwrap

import nbformat

from tinyvision.fileio import atomic_open

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = """\
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

# QUICK mode (TINYVISION_QUICK=1): tiny subsets and 1-2 epochs, so the notebook runs in about a
# minute on a 2-core CPU; the numbers then only show that the code works, not what it measures.
QUICK = os.environ.get("TINYVISION_QUICK", "0") == "1"
sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
np.random.seed(0)
%matplotlib inline
print("QUICK mode" if QUICK else "full mode", "| tinyvision", tv.__version__)"""

DATA_NOTE = """md:**Data.** The helpers look for CIFAR-10 at `datasets/cache/cifar10-jpeg.tar.gz` (or
`$TINYVISION_DATA`). When it is absent, as in continuous integration, they fall back to a small
**synthetic** data set: ten classes of striped images whose stripe angle is the label, with random
frequency, phase, tint, a blob and noise. It keeps every cell runnable, but numbers measured on
it say nothing about CIFAR-10; the printed `data:` line always says which one was used."""


def cells_to_notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for text in cells:
        if text.startswith("md:"):
            # the text starts on the marker's line or the next; the lines below it carry the
            # source's indentation, which markdown would read as code blocks: dedent them alone
            first, _, rest = text[3:].partition("\n")
            nb.cells.append(nbformat.v4.new_markdown_cell((first.strip() + "\n" + textwrap.dedent(rest)).strip("\n")))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n")))
    return nb


def write_all(names=None):
    from _notebooks import NOTEBOOKS
    for name, cells in NOTEBOOKS.items():
        if names and not any(n in name for n in names):
            continue
        nb = cells_to_notebook(cells)
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name.split('_')[0]}-{i:02d}"
        nbformat.validate(nb)
        with atomic_open(os.path.join(HERE, name + ".ipynb"), "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        print("wrote", name + ".ipynb", f"({len(nb.cells)} cells)")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    write_all(sys.argv[1:])
