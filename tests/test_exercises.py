"""Every chapter exercise's self-check FAILs on the stub as it stands in the notebook and PASSes
on the solution in chapters/solutions/CHAPTER.py.

An exercise is a markdown heading that begins "Exercise N" (chapters/checks/__init__.py has
the convention); its section runs to the next heading. The exercise cells are those under the
chapter's first heading that begins "Exercise" (its "Exercises" introduction) and the numbered
sections after it, up to the first heading that does not begin "Exercise". A code cell there
that starts with ``check.`` is a self-check; the others are the stubs (and the introduction's
import of the checks). They run in a namespace made by the chapter's setup cell (its first
code cell, IPython magics left out), in chapters/ as the working directory, as in Jupyter.
"""
import contextlib
import glob
import importlib.util
import io
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")

CHAPTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chapters")
SOLVED = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CHAPTERS, "solutions", "*.py")))
HEADING = re.compile(r"#+\s*(.*)")


def exercises(path):
    """The chapter's setup code and its exercises, as (setup, [(title, stubs, checks)]); the
    introduction's cells come first with the title 'Exercises'."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    setup = "\n".join(line for line in code[0].splitlines() if not line.lstrip().startswith("%"))
    found, current = [], None
    for cell in nb.cells:
        heading = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            title = heading.group(1).strip()
            if not title.startswith("Exercise"):
                if found:
                    break
                current = None
                continue
            current = (title, [], [])
            found.append(current)
        elif cell.cell_type == "code" and current is not None:
            current[2 if cell.source.startswith("check.") else 1].append(cell.source)
    return setup, found


def run_checks(path, solutions=None):
    """Run the chapter's exercise cells, the stubs replaced by ``solutions`` (a module) where
    given; returns [(exercise title, printed verdict)] for every self-check."""
    setup, found = exercises(path)
    namespace = {}
    exec(compile(setup, f"{path}:setup", "exec"), namespace)
    verdicts = []
    for title, stubs, checks in found:
        for source in stubs:
            exec(compile(source, f"{path}:{title}", "exec"), namespace)
        if solutions is not None:
            namespace.update({k: v for k, v in vars(solutions).items() if not k.startswith("_")})
        for source in checks:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(source, f"{path}:{title}", "exec"), namespace)
            verdicts.append((title, out.getvalue().strip()))
    return verdicts


def load_solutions(name):
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", os.path.join(CHAPTERS, "solutions", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def in_chapters(monkeypatch):
    monkeypatch.chdir(CHAPTERS)
    monkeypatch.setenv("TINYVISION_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.mark.parametrize("name", SOLVED)
def test_each_exercise_has_a_stub_and_a_self_check(name):
    _, found = exercises(os.path.join(CHAPTERS, name + ".ipynb"))
    numbered = [(t, s, c) for t, s, c in found if re.match(r"Exercise \d", t)]
    assert 3 <= len(numbered) <= 5, f"{name}: {len(numbered)} exercises, expected 3 to 5"
    for title, stubs, checks in numbered:
        assert stubs and checks, f"{name}, {title!r}: needs a stub cell and a `check.` cell"


@pytest.mark.parametrize("name", SOLVED)
def test_self_checks_fail_on_the_stubs(name):
    verdicts = run_checks(os.path.join(CHAPTERS, name + ".ipynb"))
    assert verdicts
    for title, verdict in verdicts:
        assert verdict.startswith("FAIL") and len(verdict.splitlines()) == 1, f"{title}: {verdict!r}"


@pytest.mark.parametrize("name", SOLVED)
def test_self_checks_pass_on_the_solutions(name):
    verdicts = run_checks(os.path.join(CHAPTERS, name + ".ipynb"), load_solutions(name))
    assert verdicts
    for title, verdict in verdicts:
        assert verdict.startswith("PASS"), f"{title}: {verdict}"


def test_every_chapter_with_exercises_has_solutions():
    for path in glob.glob(os.path.join(CHAPTERS, "*.ipynb")):
        name = os.path.basename(path)[:-6]
        if exercises(path)[1]:
            assert name in SOLVED, f"{name} has exercises but no chapters/solutions/{name}.py"


def test_a_self_check_explains_a_wrong_answer(capsys):
    """A wrong answer, a wrong shape and a raising function each FAIL with their reason."""
    import sys
    sys.path.insert(0, CHAPTERS)
    from checks import appendix_b as check
    check.false_alarm_rate(0.05)
    check.smoothed_cross_entropy_grad(lambda z, y, eps: z[:, :2])
    check.softmax_backward(lambda p, grad: grad)            # the Jacobian left out
    check.float32_step(1e-5)                                # float64's best step
    check.softmax_backward(lambda p, grad: 1 / 0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("FAIL false_alarm_rate") and "precision 0.161" in lines[0]
    assert lines[1].startswith("FAIL smoothed_cross_entropy_grad") and "shape (4, 2), expected (4, 5)" in lines[1]
    assert lines[2].startswith("FAIL softmax_backward") and "tv.gradcheck disagrees" in lines[2]
    assert lines[3].startswith("FAIL float32_step") and "eps" in lines[3]
    assert lines[4] == "FAIL softmax_backward: your code raised ZeroDivisionError: division by zero"
