"""Run folders: a new run never writes into another run's folder, two processes never write one,
and a resumed copy writes into the copy."""
import os
import shutil
import socket
import subprocess
import sys

import pytest

from cifar_fixture import write_cifar_batches
from tinyvision import rundir
from tinyvision.errors import RunDirError
from tinyvision.train import Trainer, TrainConfig


@pytest.fixture
def cifar_dir(tmp_path):
    return write_cifar_batches(str(tmp_path / "data"), n_train=50, n_test=20)


def config(cifar_dir, out, **kw):
    return TrainConfig(**dict(dict(model="resnet20", data=cifar_dir, out=out and str(out), epochs=1, batch_size=25,
                                   prefetch=0, eval_batch_size=20), **kw))


def snapshot(folder):
    """{name: bytes} of every file in ``folder``."""
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def ended_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def in_subprocess(code, *args):
    return subprocess.run([sys.executable, "-c", "import sys\nfrom tinyvision import rundir\n" + code, *args],
                          capture_output=True, text=True, timeout=60)


def test_without_out_each_run_gets_a_fresh_numbered_folder(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = []
    first = Trainer(config(cifar_dir, None), progress=False, log=lines.append)
    first.fit()
    second = Trainer(config(cifar_dir, None), progress=False, log=lines.append)
    assert (first.cfg.out, second.cfg.out) == (os.path.join("runs", "resnet20"), os.path.join("runs", "resnet20-2"))
    assert lines[0] == "run folder: runs/resnet20" and "run folder: runs/resnet20-2" in lines
    assert rundir.claim(None, "resnet20", log=lines.append).path == os.path.join("runs", "resnet20-3")
    # the folder records where the run is: config.json names it
    assert '"out": "runs/resnet20"' in open("runs/resnet20/config.json").read()


def test_a_folder_holding_a_run_is_refused_before_data_loads(cifar_dir, tmp_path):
    run = tmp_path / "run"
    Trainer(config(cifar_dir, run), progress=False, log=None).fit()
    before = snapshot(run)
    # the data path is wrong too: the folder is checked first, so that is what the error names
    with pytest.raises(RunDirError) as err:
        Trainer(config(str(tmp_path / "nowhere"), run, epochs=2), progress=False, log=None)
    message = str(err.value)
    assert "\n" not in message and str(run) in message and "holds a run" in message
    assert f"--resume {run}" in message and "--overwrite" in message and "another --out" in message
    assert snapshot(run) == before


def test_overwrite_replaces_the_old_runs_files(cifar_dir, tmp_path):
    run = tmp_path / "run"
    Trainer(config(cifar_dir, run, epochs=2), progress=False, log=None).fit()
    (run / "eval.json").write_text("{}")          # written by eval for the old run
    (run / "notes.txt").write_text("mine")        # not a run file: left alone
    before = snapshot(run)
    with pytest.raises(FileNotFoundError):         # a set-up that fails replaces nothing
        Trainer(config(str(tmp_path / "nowhere"), run), progress=False, log=None, overwrite=True)
    assert snapshot(run) == before
    trainer = Trainer(config(cifar_dir, run, eval_every=2), progress=False, log=None, overwrite=True)
    assert not (run / "best.tvz").exists() and not (run / "eval.json").exists()
    trainer.fit()
    assert len(trainer.history) == 1 and (run / "notes.txt").read_text() == "mine"
    assert open(run / "metrics.csv").read().count("\n") == 2   # the header and the new run's epoch


def test_an_out_that_cannot_be_a_run_folder_fails_before_data_loads(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    nowhere = str(tmp_path / "nowhere")
    with pytest.raises(RunDirError, match=f"--out {afile} is a file"):
        Trainer(config(nowhere, afile), progress=False)
    with pytest.raises(NotADirectoryError) as err:
        Trainer(config(nowhere, afile / "run"), progress=False)
    assert str(afile) in err.value.filename
    assert afile.read_text() == "x"


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_fails_naming_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for out in (ro, ro / "run"):
            with pytest.raises(PermissionError) as err:
                Trainer(config(str(tmp_path / "nowhere"), out), progress=False)
            assert err.value.filename.startswith(str(ro))
    finally:
        ro.chmod(0o755)


def test_a_failed_set_up_leaves_no_folder_and_no_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        Trainer(config(str(tmp_path / "nowhere"), None), progress=False, log=None)
    with pytest.raises(FileNotFoundError):
        Trainer(config(str(tmp_path / "nowhere"), tmp_path / "new"), progress=False, log=None)
    assert os.listdir("runs") == [] and not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    with pytest.raises(FileNotFoundError):
        Trainer(config(str(tmp_path / "nowhere"), tmp_path / "old"), progress=False, log=None)
    assert (tmp_path / "old").is_dir() and os.listdir(tmp_path / "old") == []   # not ours to remove


def test_the_lock_keeps_a_second_process_out(cifar_dir, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(config(cifar_dir, run), progress=False, log=None)   # holds the lock from here
    assert (run / ".lock").read_text().split() == [str(os.getpid()), socket.gethostname()]
    other = in_subprocess("rundir.claim(sys.argv[1], 'resnet20')", str(run))
    assert other.returncode == 1
    assert f"RunDirError: {run} is being written by process {os.getpid()}" in other.stderr
    # within one process the lock is shared (tests build trainers on one folder in turn); the
    # file goes when the last holder lets go
    again = Trainer(config(cifar_dir, run), progress=False, log=None)
    trainer.fit()
    assert (run / ".lock").exists()
    again.close()
    assert not (run / ".lock").exists()        # released at the end of fit


def test_the_lock_is_released_on_error_on_collection_and_at_exit(cifar_dir, tmp_path):
    class Failing(Trainer):
        def compute_loss(self, x, y):
            raise MemoryError("out of memory")

    run = tmp_path / "run"
    trainer = Failing(config(cifar_dir, run), progress=False, log=None)
    with pytest.raises(MemoryError):
        trainer.fit()
    assert not (run / ".lock").exists()
    trainer = Trainer(config(cifar_dir, tmp_path / "idle"), progress=False, log=None)
    assert (tmp_path / "idle" / ".lock").exists()
    del trainer
    assert not (tmp_path / "idle" / ".lock").exists()
    exited = in_subprocess("held = rundir.RunDir(sys.argv[1])", str(tmp_path / "idle"))  # then exits
    assert exited.returncode == 0 and not (tmp_path / "idle" / ".lock").exists()


def test_a_stale_lock_is_taken_over_and_another_hosts_is_not(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = ended_pid()
    (run / ".lock").write_text(f"{dead} {socket.gethostname()}\n")
    notes = []
    held = rundir.claim(str(run), "resnet20", log=notes.append)
    assert notes == [f"note: took over the lock of process {dead}, which is no longer running, in {run}"]
    assert (run / ".lock").read_text().split()[0] == str(os.getpid())
    held.release()
    # this process's pid, but this process holds no lock there: a pid reused (a restarted container)
    (run / ".lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")
    rundir.claim(str(run), "resnet20", log=notes.append).release()
    assert len(notes) == 2 and not (run / ".lock").exists()
    (run / ".lock").write_text(f"{dead} elsewhere.example\n")   # its pid cannot be checked from here
    with pytest.raises(RunDirError, match=f"is being written by process {dead} on elsewhere.example"):
        rundir.claim(str(run), "resnet20")
    assert (run / ".lock").read_text() == f"{dead} elsewhere.example\n"


def test_resume_writes_into_the_folder_given_not_the_checkpoints(cifar_dir, tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    Trainer(config(cifar_dir, original), progress=False, log=None).fit()
    shutil.copytree(original, copy)
    before = snapshot(original)
    resumed = Trainer.resume(str(copy), progress=False, log=None, epochs=2)
    assert resumed.cfg.out == str(copy)
    resumed.fit()
    assert snapshot(original) == before
    assert len(resumed.history) == 2 and open(copy / "metrics.csv").read().count("\n") == 3
    assert '"out": "' + str(copy) in open(copy / "config.json").read()


def test_resume_needs_a_checkpoint_and_the_lock(cifar_dir, tmp_path):
    with pytest.raises(RunDirError, match="no checkpoint to resume in .*empty: it has no last.tvz"):
        Trainer.resume(str(tmp_path / "empty"), progress=False)
    run = tmp_path / "run"
    Trainer(config(cifar_dir, run), progress=False, log=None).fit()
    (run / ".lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")   # a running process's
    with pytest.raises(RunDirError, match=f"is being written by process {os.getppid()}"):
        Trainer.resume(str(run), progress=False, log=None)
    os.remove(run / ".lock")
    Trainer.resume(str(run), progress=False, log=None).close()
    assert not (run / ".lock").exists()


def test_the_command_line_numbers_refuses_and_resumes_a_copy(cifar_dir, tmp_path):
    from clirun import assert_fails, run_cli
    common = ["--data", cifar_dir, "--batch-size", "25", "--epochs", "1", "--no-progress"]
    for expected in ("runs/resnet20", "runs/resnet20-2"):
        r = run_cli("train", *common, cwd=tmp_path)
        assert r.returncode == 0 and f"run folder: {expected}\n" in r.stdout, r.stdout + r.stderr
    run, copy = tmp_path / "runs" / "resnet20", tmp_path / "copy"
    before = snapshot(run)
    assert_fails(run_cli("train", "--out", run, *common, cwd=tmp_path), 2, str(run), "holds a run", "--resume",
                 "--overwrite")
    shutil.copytree(run, copy)
    r = run_cli("train", "--resume", copy, "--epochs", "2", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert snapshot(run) == before and open(copy / "metrics.csv").read().count("\n") == 3
