"""fileio.atomic_open: a file is replaced whole or not at all, and every writer in the library
goes through it."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinyvision as tv
from tinyvision import fileio
from tinyvision.models import save_pretrained
from tinyvision.plots import save_figure
from tinyvision.tasks.draw import side_by_side


def listing(folder):
    return sorted(os.listdir(folder))


def test_atomic_open_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with fileio.atomic_open(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old"          # nothing visible before the block ends
    assert path.read_text() == "new" and listing(tmp_path) == ["a.txt"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")                         # what open() gives under this umask, not 0600
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_atomic_open_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="halfway"):
        with fileio.atomic_open(path) as f:
            f.write(b"half a fi")
            raise RuntimeError("halfway")
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["a.bin"]


def test_a_full_disk_during_the_write_names_the_file(tmp_path):
    """ENOSPC raised by write or fsync carries no file name; atomic_open adds the target's, so
    the command line's one-line error can say which file did not fit."""
    path = tmp_path / "last.tvz"
    with pytest.raises(OSError, match="No space left") as info:
        with fileio.atomic_open(path):
            raise OSError(28, "No space left on device")  # as f.write raises it: no file name
    assert info.value.filename == str(path) and info.value.errno == 28 and listing(tmp_path) == []


def test_atomic_open_writers_of_one_path_do_not_share_a_temporary(tmp_path):
    path = tmp_path / "a.txt"
    with fileio.atomic_open(path, "w") as first:
        with fileio.atomic_open(path, "w") as second:
            second.write("second")
        first.write("first")
    assert path.read_text() == "first" and listing(tmp_path) == ["a.txt"]


def test_atomic_open_passes_open_options_and_refuses_other_modes(tmp_path):
    path = tmp_path / "a.csv"
    with fileio.atomic_open(path, "w", newline="") as f:
        f.write("a\r\nb\n")
    assert path.read_bytes() == b"a\r\nb\n"
    for mode in ("a", "r", "w+"):
        with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
            with fileio.atomic_open(path, mode):
                pass
    with pytest.raises(FileNotFoundError, match="its folder .*no_such_folder does not exist"):
        with fileio.atomic_open(tmp_path / "no_such_folder" / "a.txt", "w"):
            pass


def ended_pid():
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "last.tvz"
    killed = subprocess.run(  # killed halfway: no with-block exit, no cleanup
        [sys.executable, "-c", "import os, sys; from tinyvision.fileio import atomic_open\n"
                               "with atomic_open(sys.argv[1]) as f:\n    f.write(b'half'); f.flush(); os._exit(9)",
         str(path)])
    assert killed.returncode == 9
    [stale] = listing(tmp_path)
    assert stale.startswith(".last.tvz.") and stale.endswith(".tmp")
    gone = ended_pid()
    kept = [f".last.tvz.{os.getpid()}.0123abcd.tmp",   # a writer of this process, still running
            f".other.tvz.{gone}.0123abcd.tmp",         # another file's
            ".last.tvz.0123abcd.tmp",                  # no pid in the name: whose, unknown
            f".last.tvz.{gone}.0123abcd.tmp.x"]
    for name in kept + [f".last.tvz.{gone}.89abcdef.tmp"]:
        (tmp_path / name).write_bytes(b"")
    with fileio.atomic_open(path) as f:
        f.write(b"whole")
    assert path.read_bytes() == b"whole"
    assert listing(tmp_path) == sorted(kept + ["last.tvz"])


def test_pid_alive():
    assert fileio.pid_alive(os.getpid()) and not fileio.pid_alive(ended_pid())


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def _scenes():
    from scene_fixture import tiny_scenes
    return tiny_scenes(n=2)


def full_disk(fd):
    raise OSError(28, "No space left on device")


# Each of the library's writers, given a path. The file must come out readable, and a failure
# at the last moment before the rename (fsync raising, as a full disk would) must leave the
# previous file as it was: a writer that bypassed atomic_open would not fail there at all.
WRITERS = {
    "tv.save": lambda p: tv.save({"w": np.arange(3.0)}, p),
    "write_json": lambda p: fileio.write_json(p, {"a": 1}),
    "save_figure": lambda p: save_figure(_figure(), p),
    "side_by_side": lambda p: side_by_side([Image.new("RGB", (4, 4))] * 2, p),
    "SceneDataset.save": lambda p: _scenes().save(p),
    "save_pretrained": lambda p: save_pretrained(tv.nn.Linear(2, 3), p),
}


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_goes_through_atomic_open(name, tmp_path, monkeypatch):
    if name == "save_pretrained":
        pytest.importorskip("safetensors")
    path = tmp_path / "out.file"
    WRITERS[name](str(path))
    first = path.read_bytes()
    assert first

    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        WRITERS[name](str(path))
    assert path.read_bytes() == first and listing(tmp_path) == ["out.file"]


def test_cifar_cache_write_failure_warns_and_leaves_nothing(tmp_path, monkeypatch):
    from tinyvision.data import cifar
    decoded = {"test": (np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, np.int64))}
    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    with pytest.warns(UserWarning, match="could not write the CIFAR-10 cache"):
        cifar._write_cache(str(tmp_path / "c.npz"), decoded)
    assert listing(tmp_path) == []
