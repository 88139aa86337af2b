"""Run ``python -m tinyvision`` as a user would (a fresh process) and check how it ended.

``run_cli`` returns the CompletedProcess; ``assert_fails`` checks the documented exit status,
that stderr is one line naming what is wrong (``words``), and that no traceback was printed.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None, env=None, timeout=120, input=None):
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    TINYVISION_NUM_THREADS="1", TQDM_DISABLE="1")
    full_env.pop("TINYVISION_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tinyvision", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


def assert_fails(result, status, *words):
    """``result`` exited with ``status`` and printed one error line containing every one of
    ``words`` (case-insensitive), and no traceback."""
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == status, f"exit {result.returncode}, expected {status}:\n{out}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in: {lines[0]}"
    return lines[0]
