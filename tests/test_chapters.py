"""Every chapter notebook is in sync with its jupytext text file (chapters/NAME.py), runs top
to bottom in QUICK mode (TINYVISION_QUICK=1), and every executed copy in chapters/executed/
belongs to the notebook it claims to be a run of.

Each notebook is executed by nbclient in a fresh kernel with chapters/ as its working
directory; any cell that raises fails the test. Without CIFAR-10 on disk the notebooks use
their synthetic stand-in, so this runs in CI. Deselect with ``-m "not slow"``.
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")
pytest.importorskip("ipykernel")

CHAPTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chapters")
NOTEBOOKS = sorted(glob.glob(os.path.join(CHAPTERS, "*.ipynb")))
EXECUTED_COPIES = sorted(glob.glob(os.path.join(CHAPTERS, "executed", "*.ipynb")))
CELL_TIMEOUT = 300
sys.path.insert(0, CHAPTERS)
import _execute  # noqa: E402  (chapters/_execute.py: runs notebooks and keeps the executed copy)


def _code_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _markdown(nb):
    return {c.id: c.source for c in nb.cells if c.cell_type == "markdown" and c.id != "executed-run"}


def _notebook(cells):
    """A notebook of ("md" or "code", source) cells with the ids demo-00, demo-01, ..."""
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(cells):
        nb.cells.append((nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(source))
        nb.cells[-1]["id"] = f"demo-{i:02d}"
    return nb


def test_every_chapter_has_a_notebook():
    names = {os.path.basename(p) for p in NOTEBOOKS}
    for stem in ["01_", "02_", "03_", "04_", "05_", "06_", "07_", "appendix_ad", "appendix_b", "appendix_cef"]:
        assert any(n.startswith(stem) for n in names), f"no notebook for {stem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p)[:-6] for p in NOTEBOOKS])
def test_notebook_and_its_text_file_are_in_sync(path):
    name = os.path.basename(path)[:-6]
    difference = _execute.pair_difference(name)
    assert difference is None, f"{difference}: run `jupytext --sync chapters/{name}.ipynb`"


def test_a_pair_edited_on_one_side_is_out_of_sync_until_jupytext_syncs_it(tmp_path):
    """Editing the .py or the .ipynb alone is caught (and _execute refuses to run the pair);
    `jupytext --sync` with chapters/jupytext.toml carries the edit over, keeping cell ids (which
    --sync-markdown matches on) and writing no header into the .py."""
    shutil.copy(os.path.join(CHAPTERS, "jupytext.toml"), tmp_path)
    nbformat.write(_notebook([("md", "# Demo\n\nText"), ("code", "import os\n%matplotlib inline\nx = 1"),
                              ("md", "Prose")]), str(tmp_path / "demo.ipynb"))
    notebook, text = tmp_path / "demo.ipynb", tmp_path / "demo.py"

    def sync(newer):
        latest = max(os.path.getmtime(p) for p in (notebook, text) if p.exists())
        os.utime(newer, (latest + 10,) * 2)         # jupytext takes the inputs from the newer side
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(notebook)], check=True, capture_output=True)

    sync(notebook)
    assert text.read_text().startswith("# %% [markdown]\n# # Demo")
    assert _execute.pair_difference("demo", str(tmp_path)) is None
    text.write_text(text.read_text().replace("x = 1", "x = 2"))
    assert "cell 1 differs" in _execute.pair_difference("demo", str(tmp_path))
    with pytest.raises(ValueError, match="jupytext --sync"):
        _execute.execute("demo", src_dir=str(tmp_path), out_dir=str(tmp_path / "executed"))
    sync(text)
    nb = nbformat.read(str(notebook), as_version=4)
    assert nb.cells[1].source == "import os\n%matplotlib inline\nx = 2"
    assert [c.id for c in nb.cells] == ["demo-00", "demo-01", "demo-02"]
    nb.cells.append(nbformat.v4.new_markdown_cell("More prose"))
    nbformat.write(nb, str(notebook))
    assert _execute.pair_difference("demo", str(tmp_path)) == "demo.ipynb has 4 cells, demo.py 3"
    sync(notebook)
    assert _execute.pair_difference("demo", str(tmp_path)) is None and "# More prose" in text.read_text()
    text.unlink()
    assert _execute.pair_difference("demo", str(tmp_path)) == "demo.ipynb has no paired demo.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p)[:-6] for p in NOTEBOOKS])
def test_notebook_saved_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path} has saved outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p)[:-6] for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, monkeypatch):
    monkeypatch.setenv("TINYVISION_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=_execute.kernel_name(),
                                     resources={"metadata": {"path": CHAPTERS}})
    client.execute()   # raises CellExecutionError, naming the cell, on the first error


@pytest.mark.parametrize("path", NOTEBOOKS + EXECUTED_COPIES,
                         ids=[os.path.relpath(p, CHAPTERS)[:-6] for p in NOTEBOOKS + EXECUTED_COPIES])
def test_no_markdown_line_renders_as_an_indented_code_block(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        fenced, previous_blank = False, True
        for line in cell.source.split("\n"):
            fenced ^= line.lstrip().startswith("```")
            assert fenced or not (previous_blank and line.startswith("    ") and line.strip()), \
                f"{cell.get('id')}: {line!r} would show as code"
            previous_blank = not line.strip()


@pytest.mark.parametrize("path", EXECUTED_COPIES, ids=[os.path.basename(p)[:-6] for p in EXECUTED_COPIES])
def test_executed_copy_is_a_run_of_the_current_notebook(path):
    """An executed copy's code is its source notebook's, cell for cell (edit a chapter, run it
    again), so is its prose (edited markdown: --sync-markdown), it says how it was run, and no
    cell raised."""
    nb = nbformat.read(path, as_version=4)
    source = os.path.join(CHAPTERS, os.path.basename(path))
    name = os.path.basename(path)[:-6]
    assert os.path.exists(source), f"{path} is a run of a notebook that no longer exists"
    src = nbformat.read(source, as_version=4)
    assert _code_sources(nb) == _code_sources(src), \
        f"{path} ran other code than {source}: rerun `python chapters/_execute.py {name}`"
    assert _markdown(nb) == _markdown(src), \
        f"{path} has other prose than {source}: `python chapters/_execute.py --sync-markdown {name}`"
    run = nb.metadata[_execute.RUN_KEY]
    assert run["mode"] in ("default", "full", "quick") and run["wall_time_s"] > 0 and run["machine"] and run["commit"]
    assert nb.cells[0].cell_type == "markdown" and "Executed copy" in nb.cells[0].source
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path} holds an error output: {errors[0].get('ename')}"
    assert any(c.outputs for c in nb.cells if c.cell_type == "code"), f"{path} has no outputs"


def test_sync_markdown_carries_prose_into_an_executed_copy(tmp_path):
    """--sync-markdown: the source's edited markdown reaches the executed copy, whose code,
    outputs and run stamp stay; a copy of other code is refused (it needs a new run)."""
    def write(cells, folder, outputs=False):
        nb = _notebook(cells)
        if outputs:
            nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
            stamp = nbformat.v4.new_markdown_cell("> **Executed copy** of demo")
            stamp["id"] = "executed-run"
            nb.cells.insert(0, stamp)
        os.makedirs(folder, exist_ok=True)
        nbformat.write(nb, str(folder / "demo.ipynb"))

    src, out = tmp_path / "src", tmp_path / "executed"
    write([("md", "# Old title"), ("code", "print(1 + 1)"), ("md", "old words")], out, outputs=True)
    write([("md", "# New title"), ("code", "print(1 + 1)"), ("md", "old words")], src)
    assert _execute.sync_markdown("demo", src_dir=str(src), out_dir=str(out)) == 1
    nb = nbformat.read(str(out / "demo.ipynb"), as_version=4)
    assert [c.source for c in nb.cells] == ["> **Executed copy** of demo", "# New title", "print(1 + 1)", "old words"]
    assert nb.cells[2].outputs[0].text == "2\n"
    assert _execute.sync_markdown("demo", src_dir=str(src), out_dir=str(out)) == 0
    write([("md", "# New title"), ("code", "print(1 + 2)"), ("md", "old words")], src)
    with pytest.raises(ValueError, match="ran other code than its source"):
        _execute.sync_markdown("demo", src_dir=str(src), out_dir=str(out))
    write([("md", "# New title"), ("code", "print(1 + 1)"), ("md", "old words"), ("md", "a new cell")], src)
    with pytest.raises(ValueError, match="cells added or removed"):
        _execute.sync_markdown("demo", src_dir=str(src), out_dir=str(out))


def test_execute_writes_a_stamped_copy(tmp_path, monkeypatch):
    """_execute.execute runs a notebook in its own folder and writes the copy with its run facts."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    src = tmp_path / "src"
    src.mkdir()
    (src / "side.txt").write_text("found")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint('data: synthetic stand-in')\n"
                                          "print(open('side.txt').read(), os.environ['TINYVISION_QUICK'], "
                                          "os.environ['TINYVISION_FULL'])")]
    nbformat.write(nb, str(src / "demo.ipynb"))
    out = _execute.execute("demo", quick=True, timeout=60, src_dir=str(src), out_dir=str(tmp_path / "executed"))
    ran = nbformat.read(out, as_version=4)
    run = ran.metadata[_execute.RUN_KEY]
    assert run["mode"] == "quick" and run["data"] == "synthetic stand-in" and run["wall_time_s"] > 0
    assert "Executed copy" in ran.cells[0].source and "quick mode" in ran.cells[0].source
    assert "found 1 0" in ran.cells[1].outputs[-1]["text"]
    out = _execute.execute("demo", full=True, timeout=60, src_dir=str(src), out_dir=str(tmp_path / "executed"))
    ran = nbformat.read(out, as_version=4)
    assert ran.metadata[_execute.RUN_KEY]["mode"] == "full" and "found 0 1" in ran.cells[1].outputs[-1]["text"]
    assert os.listdir(tmp_path / "executed") == ["demo.ipynb"]   # written whole, no temporary left
    with pytest.raises(FileNotFoundError, match="no chapter notebook"):
        _execute.execute("absent", src_dir=str(src), out_dir=str(tmp_path / "executed"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the diverging run overflows on purpose
def test_common_fit_reports_each_epoch_and_stops_on_a_diverged_loss(monkeypatch):
    # chapters/_common.fit keeps losses on the device and reads them once per epoch; the read
    # must still give the epoch's mean loss and accuracy, and a non-finite loss must stop it.
    import _common as C
    import tinyvision as tv
    monkeypatch.setenv("TINYVISION_SYNTHETIC", "1")
    split = C.load_data(train_per_class=4, test_per_class=2)
    tv.manual_seed(0)
    model = C.cifar_resnet(8, widths=(4, 8, 8))
    hist = C.fit(model, split, "resnet_sgd", epochs=2, batch_size=8, verbose=False, warmup_epochs=0)
    assert [h["epoch"] for h in hist] == [1, 2]
    for h in hist:
        assert h["train_loss"] > 0 and 0.0 <= h["train_acc"] <= 1.0 and 0.0 <= h["test_acc"] <= 1.0
    with pytest.raises(FloatingPointError, match="epoch 1"):
        C.fit(C.cifar_resnet(8, widths=(4, 8, 8)), split, "resnet_sgd", epochs=1, batch_size=8, verbose=False,
              lr=1e30, warmup_epochs=0, clip_grad=0.0)
