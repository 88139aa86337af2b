"""Atomic file writes: every file tinyvision writes goes through ``atomic_open``.

Checkpoints, metrics.csv, eval.json, plots, dataset caches and pretrained weights are all read
back later, some of them while a run is still writing the next one. A plain ``open(path, "w")``
truncates the old file first, so a crash, a full disk or a Ctrl-C halfway leaves half a file
that the next reader trips over. Instead:

1. write to a new temporary file ``.NAME.PID.RANDOM.tmp`` in the target's folder (same file
   system, so step 3 is a rename, not a copy), created with ``"x"`` (exclusive), so two
   writers never share one and the file gets the user's usual permissions (umask), which
   ``tempfile.mkstemp``'s 0600 would not give;
2. flush and ``fsync`` it, so its bytes are on disk before its name is;
3. ``os.replace`` it over the target: POSIX and Windows make this one atomic step, so a reader
   sees either the old file or the new one, never a mixture; then fsync the folder, so the
   rename itself survives a power cut.

If the ``with`` block raises, the temporary file is removed and the old file stays as it was.
A killed process cannot remove its own, so each write of NAME first removes the temporary files
of NAME whose writer (the PID in their name) is no longer running on this machine.

The one writer that does not use it is ``data.download``: a download keeps its ``.part`` file
on purpose, so that the next call resumes it, and renames it once complete (and its md5
matches, where one is given).
"""
import contextlib
import json
import os
import re
import secrets


@contextlib.contextmanager
def atomic_open(path, mode="wb", **open_kwargs):
    """Open a temporary file for writing in ``path``'s folder; when the ``with`` block ends
    without an error, move it over ``path`` (see the module docstring).

    Args:
        path: str or os.PathLike, the file to (re)write. Its folder must exist (else
            FileNotFoundError naming it).
        mode: ``"wb"`` (binary, the default) or ``"w"`` (text).
        **open_kwargs: passed to ``open`` (``newline=""`` for csv, ``encoding``).
    Yields:
        the open file object. Writers that want a file name (not a file object) cannot use
        this; every writer in tinyvision takes a file object (``np.savez``, ``Figure.savefig``
        with ``format=``, ``PIL.Image.save`` with ``format=``, ``json.dump``, ``zipfile``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: its folder {folder} does not exist")
    name = os.path.basename(path)
    _remove_stale_temporaries(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    f = open(tmp, mode.replace("w", "x"), **open_kwargs)  # outside try: if this fails, no file is ours
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            exc.filename = path  # a full disk (ENOSPC) in write or fsync names no file: name ours
        raise
    _fsync_folder(folder)


def write_json(path, obj):
    """Write ``obj`` as JSON (indented one space per level) through ``atomic_open``."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=1)


def pid_alive(pid):
    """Whether process ``pid`` runs on this machine. Where that cannot be asked safely
    (Windows: signal 0 there is a Ctrl-C event), every process counts as running."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _remove_stale_temporaries(folder, name):
    """Remove ``.NAME.PID.RANDOM.tmp`` files in ``folder`` whose process PID has ended (a write
    killed halfway); a running writer's, and other names' temporaries, are left alone."""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[0-9a-f]{8}\.tmp")
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, entry))


def _fsync_folder(folder):
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
