"""Run folders: a new run never writes into another run's folder, and one process at a time
writes a run.

A run folder holds a run when it has any of ``RUN_MARKERS`` (what ``Trainer.fit`` writes).

- ``claim(out, model)``: the folder of a new run. ``out`` None picks the first of
  ``runs/MODEL``, ``runs/MODEL-2``, ... that does not exist, created with ``os.mkdir``, which
  fails for all but one of two processes racing for a name. An ``out`` that holds a run is
  refused (``RunDirError``) unless ``overwrite``: then ``clear()`` removes the old run's
  files (``RUN_FILES``) once the new run is set up (a set-up that fails, e.g. on a wrong data
  path, loses nothing), so that old and new never mix.
- ``RunDir(path)``: hold a folder, e.g. to resume the run in it; ``with run_dir:`` holds it
  again for a block (``Trainer.fit``).

Holding a folder means owning its lock file ``.lock``, created with O_CREAT | O_EXCL (one
process wins) and holding "PID HOST". Another process that finds it gets ``RunDirError``,
unless the PID no longer runs on this host: a killed run's lock, which is taken over with a
note. The lock keeps processes apart; within one process, several ``RunDir`` objects may hold
one folder (tests and experiments build trainers on a folder one after another), and the file
goes when the last lets go. ``release()`` lets go; it also runs when the holder is
garbage-collected or the interpreter exits, but not on SIGKILL: hence the stale-lock check.
"""
import collections
import contextlib
import os
import socket
import weakref

from .errors import RunDirError
from .fileio import pid_alive

LOCK = ".lock"
RUN_MARKERS = ("config.json", "metrics.csv", "last.tvz", "best.tvz")
# every file tinyvision writes into a run folder (train, finetune, pretrain, eval, plot, detect/segment)
RUN_FILES = RUN_MARKERS + ("history.json", "finetune.json", "backbone.safetensors", "eval.json",
                           "confusion_matrix.png", "learning_curves.png", "metrics.json")
_holders = collections.Counter()  # lock file -> RunDir objects of this process holding it


class RunDir:
    """The run folder ``path``, held by this process until ``release()``.

    ``created``: this process made the folder (``release(discard=True)`` then removes it again
    if nothing was written there, e.g. when a run's set-up failed). ``log`` receives the note
    on a stale lock taken over."""

    def __init__(self, path, created=False, log=print):
        self.path, self.created, self.log = path, created, log
        self.old_files = []  # the files of the run that this one replaces (claim with overwrite)
        self._lock = os.path.realpath(os.path.join(path, LOCK))
        self._token = f"{os.getpid()} {socket.gethostname()}"
        self.held = False
        self.acquire()

    def acquire(self):
        """Take the lock (again, after a ``release()``); RunDirError if another process has it."""
        if self.held:
            return
        if not _holders[self._lock]:
            self._create_lock()
        _holders[self._lock] += 1
        self.held = True
        # let go when this object is collected or the interpreter exits (the finalizer must not
        # reference self, or the object would never be collected)
        self._finalizer = weakref.finalize(self, _let_go, self._lock, self._token)

    def _create_lock(self):
        for _ in range(3):  # a stale lock removed, or a holder that let go meanwhile: try again
            try:
                fd = os.open(self._lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._check_holder()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self._token + "\n")
            return
        raise RunDirError(f"{self.path} is locked by another process ({self._lock}); try again")

    def _check_holder(self):
        """Raise RunDirError if the lock's holder runs; remove its lock if it does not."""
        try:
            with open(self._lock) as f:
                token = f.read().strip()
        except FileNotFoundError:
            return
        pid, _, host = token.partition(" ")
        # this host's, and its process ended (or is this one, which holds no lock: a pid reused)
        stale = pid.isdigit() and host == socket.gethostname() and (
            int(pid) == os.getpid() or not pid_alive(int(pid)))
        if not stale:
            on = f" on {host}" if host and host != socket.gethostname() else ""
            raise RunDirError(f"{self.path} is being written by process {pid or '?'}{on}; wait for it to "
                              f"end, or use another --out (if no process writes it, delete {self._lock})")
        if _remove_lock(self._lock, token):
            self.log(f"note: took over the lock of process {pid}, which is no longer running, in {self.path}")

    def release(self, discard=False):
        """Let go of the lock; with ``discard``, also remove the folder if this process created
        it and it holds nothing else."""
        if self.held:
            self._finalizer.detach()
            _let_go(self._lock, self._token)
            self.held = False
        if discard and self.created:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)

    @contextlib.contextmanager
    def released_on_error(self):
        """A block that sets up the run: if it fails, let go of the folder (and remove it if this
        process created it and nothing was written), so that a failed start leaves no empty or
        locked folder behind."""
        try:
            yield self
        except BaseException:
            self.release(discard=True)
            raise

    def clear(self):
        """Remove ``old_files``."""
        for name in self.old_files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.path, name))
        self.old_files = []

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def _let_go(lock, token):
    """One holder fewer of ``lock``; the last removes the file."""
    _holders[lock] -= 1
    if _holders[lock] <= 0:
        del _holders[lock]
        _remove_lock(lock, token)


def _remove_lock(path, token):
    """Remove the lock file ``path`` if it still holds ``token``; whether it did."""
    try:
        with open(path) as f:
            if f.read().strip() != token:
                return False
        os.remove(path)
        return True
    except FileNotFoundError:
        return False


def claim(out, model, overwrite=False, log=print):
    """A held ``RunDir`` for a new run of ``model``: ``out``, or a fresh runs/MODEL[-N] for None
    (named in ``log``). RunDirError if ``out`` holds a run (unless ``overwrite``: its files
    become ``old_files``) or is a file; OSError naming the path if it cannot be created or
    written."""
    if out is None:
        os.makedirs("runs", exist_ok=True)
        n = 1
        while True:
            path = os.path.join("runs", model if n == 1 else f"{model}-{n}")
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                n += 1
        log(f"run folder: {path}")
        return RunDir(path, created=True, log=log)
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunDirError(f"--out {out} is a file; give a folder for the run")
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    run = RunDir(out, created=created, log=log)
    found = [name for name in RUN_MARKERS if os.path.exists(os.path.join(out, name))]
    if found and not overwrite:
        run.release()
        raise RunDirError(f"{out} holds a run ({', '.join(found)}); use --resume {out} to continue it, "
                          "--overwrite to replace it, or another --out")
    run.old_files = [name for name in RUN_FILES if found and os.path.exists(os.path.join(out, name))]
    return run
