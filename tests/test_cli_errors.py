"""The command line against a user's mistakes and the environment's faults (issue 28): each ends
with the documented exit status (2 input, 1 runtime, 130 interrupted) and one line on stderr
that names the flag or file, never a traceback, and leaves every existing file as it was.

Most cases call ``cli.main`` in this process (fast); the ones where a fresh process matters
(the real entry point, a real SIGINT, the traceback of --debug) run ``python -m tinyvision``.
"""
import dataclasses
import errno
import hashlib
import os
import struct
import sys
import zlib

import numpy as np
import pytest

import tinyvision as tv
from cifar_fixture import CLASSES, write_cifar_batches
from clirun import ROOT, assert_fails, run_cli
from tinyvision import cli
from tinyvision.errors import InputError
from tinyvision.train import TrainConfig

METRICS = ("epoch,train_loss,train_acc,test_loss,test_acc,wall_time\n"
           "1,2.30,0.10,2.20,0.15,60\n2,2.00,0.20,1.90,0.25,120\n")
NO_DOWNLOAD = {"TINYVISION_CIFAR10_URL": "http://127.0.0.1:9/cifar-10-python.tar.gz"}  # a closed port


def png_header(path, width, height):
    """A PNG whose header claims width x height pixels (and holds none): what PIL refuses as a
    decompression bomb when opening it, before decoding anything."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder as a user has it: CIFAR-format data, a run with a checkpoint and metrics, images,
    a run whose metrics.csv was cut short, and a plain file."""
    from PIL import Image
    root = tmp_path_factory.mktemp("workspace")
    cifar = write_cifar_batches(str(root / "data"), n_train=100, n_test=50)
    run = root / "run"
    run.mkdir()
    model = tv.models.create("resnet20")
    config = dataclasses.asdict(TrainConfig(model="resnet20", data=cifar).resolved())
    tv.save({"model": model.state_dict(), "config": config, "classes": list(CLASSES)}, str(run / "best.tvz"))
    (run / "metrics.csv").write_text(METRICS)
    (root / "cut").mkdir()
    (root / "cut" / "metrics.csv").write_text(METRICS[:-9])  # the last line ends mid-row
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(root / "cat.png")
    png_header(root / "bomb.png", 20000, 20000)
    (root / "notes.txt").write_text("not an image\n")
    (root / "file").write_text("a file, not a folder\n")
    return root


@pytest.fixture
def in_workspace(workspace, monkeypatch):
    """Run in the workspace (so that default paths such as runs/ and datasets/cache/ land there)
    with downloads pointed at a closed port and no debug setting from the caller."""
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("TINYVISION_DEBUG", raising=False)
    for key, value in NO_DOWNLOAD.items():
        monkeypatch.setenv(key, value)
    return workspace


def snapshot(root):
    """Every file and folder under ``root`` with its content's hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


def main_fails(argv, capsys):
    """(exit status, the one stderr line) of cli.main(argv); no traceback."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return exit_.value.code, lines[0]


CUDA = ["--device", "cuda"]
INPUT_MISTAKES = [  # (argv, words the line must hold), each exit status 2
    (["train", "--subset", "0"], ["--subset", ">= 1", "got 0"]),
    (["train", "--subset", "-5"], ["--subset", "got -5"]),
    (["train", "--test-subset", "0"], ["--test-subset"]),
    (["train", "--epochs", "-3"], ["--epochs", ">= 1", "-3"]),
    (["train", "--epochs", "-3", "--schedule", "cosine"], ["--epochs", "-3"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--warmup-epochs", "-1"], ["--warmup-epochs", "-1"]),
    (["train", "--warmup-epochs", "5", "--epochs", "3"], ["--warmup-epochs", "below --epochs (3)"]),
    (["train", "--label-smoothing", "2"], ["--label-smoothing", "[0, 1)"]),
    (["train", "--clip-grad", "-1"], ["--clip-grad", ">= 0"]),
    (["train", "--lr", "0"], ["--lr", "> 0"]),
    (["train", "--lr", "nan"], ["--lr"]),
    (["train", "--momentum", "1"], ["--momentum"]),
    (["train", "--weight-decay", "-0.1"], ["--weight-decay"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--eval-every", "0"], ["--eval-every"]),
    (["train", "--lookahead-every", "-1"], ["--lookahead-every", "got -1"]),
    (["train", "--lookahead-every", "two"], ["--lookahead-every", "two"]),
    (["train", "--whitening-images", "-5"], ["--whitening-images", "got -5"]),
    (["train", "--whiten-bias-epochs", "-1"], ["--whiten-bias-epochs", "got -1"]),
    (["train", "--norm-bias-lr-scale", "0"], ["--norm-bias-lr-scale", "> 0"]),
    (["train", "--schedule", "triangel"], ["--schedule", "triangle"]),
    (["train", "--model-arg", "width_mult"], ["--model-arg", "KEY=VALUE", "width_mult"]),
    (["train", "--model", "cifar_speedrun", "--model-arg", "foo=1"], ["--model-arg foo=1", "cifar_speedrun"]),
    (["train", "--recipe", "speedrun_cpu", "--model-arg", "width_mult=1", "--model-arg", "width_mult=-2"],
     ["--model-arg width_mult=-2", "width_mult: expected a number > 0"]),
    (["train", "--tta-shift", "40"], ["--tta-shift", "0 to 31", "got 40"]),
    (["train", "--tta-shift", "-1"], ["--tta-shift"]),
    (["train", "--model", "resnet2"], ["--model", "resnet2", "resnet20"]),
    (["train", "--recipe", "fast"], ["--recipe", "fast"]),
    (["train", "--progressive", "24:20"], ["progressive", "whole images"]),
    (["train", "--progressive", "24"], ["--progressive", "SIZE:EPOCH"]),
    (["train", "--device", "tpu"], ["--device", "tpu"]),
    (["train", "--data", "nowhere.tar.gz"], ["--data", "nowhere.tar.gz"]),
    (["train", "--resume", "no_run"], ["no_run"]),
    (["eval", "run/best.tvz", "--tta-shift", "40"], ["--tta-shift", "got 40"]),
    (["eval", "run/best.tvz", "--tta-shift", "-2"], ["--tta-shift", "got -2"]),
    (["eval", "run/best.tvz", "--out", "/nonexistent/dir"], ["--out", "/nonexistent/dir", "not an existing folder"]),
    (["eval", "run/best.tvz", "--out", "file"], ["--out", "file", "is a file"]),
    (["eval", "run/best.tvz", "--out", "file/reports"], ["--out", "file/reports", "not an existing folder"]),
    (["eval", "run/missing.tvz"], ["run/missing.tvz"]),
    (["predict", "run/best.tvz", "bomb.png"], ["bomb.png", "decompression bomb"]),
    (["predict", "run/best.tvz", "cat.png", "notes.txt"], ["notes.txt"]),
    (["predict", "run/best.tvz", "missing.png"], ["missing.png"]),
    (["predict", "run/best.tvz", "run"], ["image run"]),
    (["plot", "no_such_run"], ["no_such_run", "no such folder"]),
    (["plot", "data"], ["no metrics.csv in data"]),
    (["plot", "cut"], ["metrics.csv", "line 3", "truncated"]),
    (["plot", "run", "--wall-time", "--out", "no_folder/curves.png"], ["no_folder"]),
    (["frobnicate"], ["invalid choice", "frobnicate"]),
    ([], ["command"]),
]


@pytest.mark.parametrize("argv, words", INPUT_MISTAKES, ids=[" ".join(a) or "none" for a, _ in INPUT_MISTAKES])
def test_an_input_mistake_is_one_line_and_status_2(argv, words, in_workspace, capsys):
    before = snapshot(in_workspace)
    status, line = main_fails(argv, capsys)
    assert status == 2, line
    assert line.startswith("python -m tinyvision"), line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    assert snapshot(in_workspace) == before  # nothing written, changed, downloaded or decoded


@pytest.mark.skipif(tv.cuda_available(), reason="this machine has CuPy and a GPU")
@pytest.mark.parametrize("argv", [["train"], ["eval", "run/best.tvz"], ["predict", "run/best.tvz", "cat.png"],
                                  ["finetune", "run/best.tvz"], ["detect", "train"]])
def test_device_cuda_without_cupy_says_how_to_install_it(argv, in_workspace, capsys):
    status, line = main_fails(argv + CUDA, capsys)
    assert status == 2 and "--device cuda" in line and 'pip install -e ".[gpu]"' in line, line


def test_the_checks_run_before_the_data_is_looked_for(in_workspace, capsys, monkeypatch):
    # a bad flag must not wait for (or start) a download: resolve_cifar10 is never reached
    def resolve(*args, **kwargs):
        raise AssertionError("data resolved before the arguments were checked")
    monkeypatch.setattr(tv.data, "resolve_cifar10", resolve)
    status, line = main_fails(["train", "--label-smoothing", "1"], capsys)
    assert status == 2 and "--label-smoothing" in line
    status, line = main_fails(["eval", "run/best.tvz", "--out", "file"], capsys)
    assert status == 2 and "--out" in line
    status, line = main_fails(["train", "--model", "cifar_speedrun", "--model-arg", "depth=3"], capsys)
    assert status == 2 and "--model-arg depth=3" in line


def test_a_model_keyword_the_model_refuses_is_one_line_in_a_fresh_process(workspace):
    result = run_cli("train", "--recipe", "speedrun_cpu", "--model-arg", "identity_init=false",
                     "--model-arg", "logit_scle=0.1", cwd=workspace, env=NO_DOWNLOAD)
    assert_fails(result, 2, "python -m tinyvision train: error: --model-arg logit_scle=0.1",
                 "unexpected keyword argument 'logit_scle'")


def test_debug_shows_the_traceback(in_workspace, capsys, monkeypatch):
    for argv in (["--debug", "train", "--subset", "0"], ["train", "--subset", "0", "--debug"]):
        with pytest.raises(InputError, match="--subset"):
            cli.main(argv)
    monkeypatch.setenv("TINYVISION_DEBUG", "1")
    with pytest.raises(InputError, match="--subset"):
        cli.main(["train", "--subset", "0"])


def test_a_fresh_process_prints_one_line_or_with_debug_the_traceback(workspace):
    result = run_cli("train", "--subset", "0", cwd=workspace, env=NO_DOWNLOAD)
    assert_fails(result, 2, "python -m tinyvision train: error: --subset")
    result = run_cli("train", "--subset", "0", cwd=workspace, env=dict(NO_DOWNLOAD, TINYVISION_DEBUG="1"))
    assert result.returncode == 1 and "Traceback" in result.stderr and "InputError: --subset" in result.stderr


def test_runtime_failures_are_one_line_and_status_1(capsys):
    # the handler alone, on what a command may raise while it works
    cases = [(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run/last.tvz"), 1,
              "run/last.tvz: No space left on device"),
             (OSError(errno.EIO, os.strerror(errno.EIO)), 1, "Input/output error"),
             (tv.data.DownloadError("download of http://x failed: timed out"), 1, "timed out"),
             (MemoryError(), 1, "out of memory"),
             (FloatingPointError("the loss became nan at epoch 1, step 3; lower --lr"), 1, "lower --lr"),
             (KeyError("layer4"), 1, "internal error (KeyError: 'layer4'); rerun with --debug"),
             (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "runs/x"), 2, "runs/x: Permission denied"),
             (ValueError("two\nlines"), 2, "error: two lines"),
             (KeyboardInterrupt(), 130, "interrupted")]
    for exc, status, text in cases:
        def fail(args, exc=exc):
            raise exc
        args = cli.build_parser().parse_args(["models"])
        args.fn = fail
        assert cli.run(args) == status, exc
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and text in err and err.startswith("python -m tinyvision models: "), err


def test_disk_full_while_writing_the_report_names_the_file(in_workspace, capsys, monkeypatch):
    # the kernel's ENOSPC on creating eval.json's temporary file: status 1, the file named, one
    # line (no chain of tracebacks), the earlier report kept
    from tinyvision import fileio
    run = in_workspace / "run"
    (run / "eval.json").write_text('{"accuracy": "earlier report"}')

    def full_disk(path, *args, **kwargs):
        if "eval.json" not in path:
            return open(path, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    monkeypatch.setattr(fileio, "open", full_disk, raising=False)
    status, line = main_fails(["eval", "run/best.tvz"], capsys)
    assert status == 1 and "No space left on device" in line and str(run) in line, line
    assert (run / "eval.json").read_text() == '{"accuracy": "earlier report"}'
    assert not [name for name in os.listdir(run) if name.endswith(".tmp")]
    (run / "eval.json").unlink()


def test_a_diverged_run_stops_with_one_line_and_status_1(in_workspace, tmp_path, capsys, monkeypatch):
    # the NaN stop of train.read_losses, reached through a loss that is NaN from the first step
    from tinyvision.train import Trainer
    compute_loss = Trainer.compute_loss

    def nan_loss(self, x, y):
        loss, correct = compute_loss(self, x, y)
        return loss * float("nan"), correct
    monkeypatch.setattr(Trainer, "compute_loss", nan_loss)
    status, line = main_fails(["train", "--model", "vit_cifar_tiny", "--data", str(in_workspace / "data"),
                               "--subset", "2", "--batch-size", "10", "--epochs", "1", "--no-progress",
                               "--out", str(tmp_path / "nan")], capsys)
    assert status == 1 and "the loss became nan" in line and "--lr" in line, line


@pytest.mark.parametrize("where", ["data", "eval", "training"])
def test_ctrl_c_anywhere_exits_130(where, in_workspace, tmp_path, capsys, monkeypatch):
    from tinyvision import evaluate, train

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    target = {"data": (tv.data, "CIFAR10"), "eval": (evaluate, "predict_logits"),
              "training": (train.Trainer, "train_one_epoch")}[where]
    monkeypatch.setattr(*target, interrupt)
    argv = (["eval", "run/best.tvz", "--out", str(tmp_path)] if where == "eval" else
            ["train", "--model", "vit_cifar_tiny", "--data", "data", "--subset", "2", "--batch-size", "10",
             "--no-progress", "--out", str(tmp_path / "run")])
    status, line = main_fails(argv, capsys)
    assert status == 130 and line.endswith(": interrupted"), line


def test_a_real_sigint_while_the_data_loads_exits_130(workspace):
    # a fresh process gets SIGINT while it reads the data set: one line, status 130, no hang
    script = ("import os, signal, sys, time\n"
              "import tinyvision.data\n"
              "def load(*args, **kwargs):\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    time.sleep(60)\n"
              "tinyvision.data.CIFAR10 = load\n"
              "from tinyvision import cli\n"
              "cli.main(sys.argv[1:])\n")
    import subprocess
    env = dict(os.environ, PYTHONPATH=ROOT, TINYVISION_NUM_THREADS="1")
    env.pop("TINYVISION_DEBUG", None)
    result = subprocess.run([sys.executable, "-c", script, "eval", "run/best.tvz"], cwd=workspace, env=env,
                            capture_output=True, text=True, timeout=60)
    assert_fails(result, 130, "python -m tinyvision eval: interrupted")
