"""Checkpoint and weights files that cannot be used: each gets one line naming the file and
what it is (truncated, corrupted, empty, a folder, another format, another model's), from the
library as CheckpointError and from the command line with exit status 2 and no traceback; a
weights file of other shapes is refused, naming every difference, unless --allow-missing; the
finetune/pretrain/detect/segment flags are checked before any work. No file given is changed."""
import dataclasses
import hashlib
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models, transfer
from tinyvision.errors import CheckpointError
from tinyvision.evaluate import load_checkpoint_model
from tinyvision.train import TrainConfig

sys.path.insert(0, os.path.dirname(__file__))
from cifar_fixture import CLASSES, write_cifar_batches  # noqa: E402
from clirun import assert_fails, run_cli  # noqa: E402

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _checkpoint(path, model, name, **config):
    """A training checkpoint as ``Trainer.state_dict`` writes it, as far as loading reads it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tv.save({"model": model.state_dict() if hasattr(model, "state_dict") else model,
             "config": dict(dataclasses.asdict(TrainConfig(model=name)), **config),
             "classes": list(CLASSES)}, path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> path of every kind of bad file, plus 'good' (a ResNet-20 training checkpoint)
    and 'data' (a small CIFAR-10 in the official format)."""
    d = tmp_path_factory.mktemp("checkpoints")
    tv.manual_seed(0)
    resnet = models.create("resnet20", num_classes=10)
    f = {"good": _checkpoint(d / "run" / "best.tvz", resnet, "resnet20"), "folder": str(d / "run")}
    good = open(f["good"], "rb").read()

    def write(name, data):
        f[name] = str(d / name)
        with open(f[name], "wb") as out:
            out.write(data)
    write("truncated.tvz", good[:len(good) // 2])
    flipped = bytearray(good)
    flipped[good.index(b"\x93NUMPY") + 200] ^= 0xFF     # inside the first array: its CRC-32 fails
    write("crc.tvz", bytes(flipped))
    write("empty.tvz", b"")
    write("text.tvz", b"epoch 3, accuracy 0.91\n")
    write("pickle.pt", pickle.dumps({"weight": [1.0, 2.0]}))
    f["plain.npz"] = str(d / "plain.npz")
    np.savez(f["plain.npz"], weight=np.zeros(3))
    f["weights.safetensors"] = str(d / "weights.safetensors")
    models.save_pretrained(resnet, f["weights.safetensors"], metadata={"architecture": "resnet20"})
    wrong = {k: v for k, v in resnet.state_dict().items()}
    wrong["layer3.2.conv2.weight"] = np.zeros((64, 32, 3, 3), np.float32)   # another width
    f["wrong_shape.safetensors"] = str(d / "wrong_shape.safetensors")
    safetensors_numpy.save_file(wrong, f["wrong_shape.safetensors"], metadata={"architecture": "resnet20"})
    # other models' checkpoints: a pretraining task's, a detector's, a ViT's, and weights that
    # are not the model the config names
    pretext = {"backbone." + k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    f["pretext.tvz"] = _checkpoint(d / "pretext.tvz", dict(pretext, **{"head.weight": np.zeros((4, 64))}),
                                   "resnet20")
    tv.save({"model": {"backbone.stem.0.weight": np.zeros((16, 3, 3, 3))}, "classes": list(CLASSES),
             "config": {"task": "detect", "backbone": "resnet"}}, d / "detect.tvz")
    f["detect.tvz"] = str(d / "detect.tvz")
    f["vit.tvz"] = _checkpoint(d / "vit.tvz", models.create("vit_cifar_tiny", num_classes=10), "vit_cifar_tiny")
    f["mixed.tvz"] = _checkpoint(d / "mixed.tvz", models.create("resnet32", num_classes=10), "resnet20")
    f["data"] = os.path.dirname(write_cifar_batches(str(d), n_train=50, n_test=20))
    f["image"] = str(d / "cat.png")
    from PIL import Image
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(f["image"])
    return f


def _digest(path):
    if os.path.isdir(path):
        return {name: _digest(os.path.join(path, name)) for name in sorted(os.listdir(path))}
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------------ the library
LOAD_CASES = [
    ("truncated.tvz", r"is truncated \(\d+ bytes; the zip archive's end record is missing\)"),
    ("crc.tvz", r"is corrupted: its member 'model/conv1.weight.npy' fails its CRC-32 check"),
    ("empty.tvz", r"is empty \(0 bytes\)"),
    ("folder", r"is a folder, not a checkpoint file; give one of its files: .*best.tvz"),
    ("text.tvz", "is a text file, not a tinyvision file"),
    ("pickle.pt", "is a Python pickle .* tinyvision never unpickles"),
    ("plain.npz", r"is an .npz of arrays \(numpy.savez\?\), not a tinyvision file"),
    ("weights.safetensors", "is a .safetensors file of weights only .* finetune .* tv.models.load_pretrained"),
]


@pytest.mark.parametrize("name,message", LOAD_CASES)
def test_load_says_what_the_file_is(files, name, message):
    with pytest.raises(CheckpointError, match=message) as err:
        tv.load(files[name])
    assert str(err.value).startswith(files[name]) and "\n" not in str(err.value)


def test_a_byte_flipped_anywhere_near_the_end_is_corruption_not_another_format(tmp_path):
    path = tmp_path / "small.tvz"
    tv.save({"model": tv.nn.Linear(3, 2).state_dict(), "epoch": 1}, path)
    good = path.read_bytes()
    bad = tmp_path / "bad.tvz"
    for pos in range(len(good) - 400, len(good)):
        data = bytearray(good)
        data[pos] ^= 0xFF
        bad.write_bytes(bytes(data))
        try:
            tv.load(bad)   # a flip in a field nobody reads (a timestamp, the zip comment's length)
        except CheckpointError as err:
            assert " is corrupted" in str(err) or " is truncated" in str(err), (len(good) - pos, str(err))


def test_a_pytorch_zip_is_named(tmp_path):
    with zipfile.ZipFile(tmp_path / "model.pt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({}))
    with pytest.raises(CheckpointError, match="a PyTorch zip"):
        tv.load(tmp_path / "model.pt")


@pytest.mark.parametrize("name,message", [
    ("pretext.tvz", "holds a pretraining task around a resnet20 .*not a resnet20 classifier; fine-tune it first"),
    ("detect.tvz", "is a checkpoint of a detection model, not of a classifier: use python -m tinyvision detect eval"),
    ("mixed.tvz", r"does not fit a resnet20: unexpected in the file \(72\): layer1.3.conv1.weight"),
])
def test_load_checkpoint_model_refuses_other_models(files, name, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_model(files[name])
    model, cfg, classes = load_checkpoint_model(files["good"])
    assert cfg.model == "resnet20" and classes == list(CLASSES)


def test_finetune_names_both_models(files):
    with pytest.raises(CheckpointError, match="holds a vit_cifar_tiny, not a resnet20"):
        transfer.build_finetune_model(files["vit.tvz"], 5, model="resnet20")


def test_wrong_shapes_are_refused_unless_strict_is_off(files):
    expected = r"does not fit a resnet20: shape mismatch \(1\): layer3.2.conv2.weight: file has \(64, 32, 3, 3\)"
    with pytest.raises(CheckpointError, match=expected):
        models.load_pretrained(models.create("resnet20"), files["wrong_shape.safetensors"])
    with pytest.raises(CheckpointError, match=expected + ".*--allow-missing"):
        transfer.build_finetune_model(files["wrong_shape.safetensors"], 5)
    net, info = transfer.build_finetune_model(files["wrong_shape.safetensors"], 5, strict=False)
    assert [m[0] for m in info["load"].mismatched_keys] == ["layer3.2.conv2.weight", "fc.weight", "fc.bias"]
    # the replaced head needs no flag: 10 classes in the file, 5 in the model
    net, info = transfer.build_finetune_model(files["weights.safetensors"], 5)
    assert net.fc.weight.shape == (5, 64)
    np.testing.assert_array_equal(net.conv1.weight.numpy(), tv.load(files["good"])["model"]["conv1.weight"])


def test_load_pretrained_says_what_the_file_is(files, tmp_path):
    model = models.create("resnet20")
    with pytest.raises(CheckpointError, match=r"best.tvz is a zip archive \(a tinyvision .tvz checkpoint\?\), not a "
                                              r".safetensors file"):
        models.load_pretrained(model, files["good"])
    with pytest.raises(CheckpointError, match="is a folder; expected a .safetensors file"):
        models.load_pretrained(model, files["folder"])
    cut = tmp_path / "cut.safetensors"
    data = open(files["weights.safetensors"], "rb").read()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.safetensors is a damaged .safetensors file \(truncated"):
        transfer.build_finetune_model(str(cut), 5)


def test_state_dict_mismatches_are_named(files):
    model = models.create("resnet20")
    model.conv1.weight.data[...] = 0
    state = dict(tv.load(files["good"])["model"])
    state["fc.weight"] = np.zeros((3, 64), np.float32)
    del state["bn1.bias"]
    with pytest.raises(CheckpointError, match=r"x.tvz does not fit a resnet20: shape mismatch \(1\): fc.weight: "
                                              r"file has \(3, 64\), model has \(10, 64\); missing from the file "
                                              r"\(1\): bn1.bias \(strict=False"):
        models.pretrained.load_state(model, state, "x.tvz")
    assert not model.conv1.weight.numpy().any()   # nothing was loaded
    models.pretrained.load_state(model, state, "x.tvz", replaced=("fc", "bn1"))   # nothing else differs
    np.testing.assert_array_equal(model.conv1.weight.numpy(), state["conv1.weight"])


# ------------------------------------------------------------------ the command line
CLI_CASES = [
    ("eval", "truncated.tvz", ["truncated", "end record"]),
    ("eval", "crc.tvz", ["corrupted", "CRC-32"]),
    ("eval", "empty.tvz", ["empty (0 bytes)"]),
    ("eval", "folder", ["is a folder", "best.tvz"]),
    ("eval", "plain.npz", ["npz", "not a tinyvision file"]),
    ("eval", "weights.safetensors", [".safetensors", "weights only", "finetune"]),
    ("eval", "pretext.tvz", ["pretraining", "not a resnet20 classifier"]),
    ("eval", "detect.tvz", ["detection model", "detect eval"]),
    ("predict", "crc.tvz", ["corrupted", "CRC-32"]),
    ("predict", "weights.safetensors", [".safetensors", "weights only"]),
    ("finetune", "truncated.tvz", ["truncated"]),
    ("finetune", "crc.tvz", ["corrupted", "CRC-32"]),
    ("finetune", "empty.tvz", ["empty"]),
    ("finetune", "folder", ["is a folder"]),
    ("finetune", "plain.npz", ["npz"]),
    ("finetune", "detect.tvz", ["detection model", "not of a classifier"]),
    ("finetune", "vit.tvz --model resnet20", ["holds a vit_cifar_tiny, not a resnet20"]),
    ("finetune", "wrong_shape.safetensors", ["layer3.2.conv2.weight: file has (64, 32, 3, 3), model has (64, 64, 3, 3)",
                                             "--allow-missing"]),
]


@pytest.mark.parametrize("command,case,words", CLI_CASES, ids=[f"{c}-{f.split()[0]}" for c, f, _ in CLI_CASES])
def test_cli_bad_checkpoint(files, tmp_path, command, case, words):
    name, *flags = case.split()
    args = {"eval": [files[name], "--out", tmp_path / "eval"], "predict": [files[name], files["image"]],
            "finetune": [files[name], "--data", files["data"], "--out", tmp_path / "ft", "--no-progress"]}[command]
    before = _digest(files[name])
    line = assert_fails(run_cli(command, *args, *flags, cwd=tmp_path), 2, *words)
    assert files[name] in line
    assert _digest(files[name]) == before


def test_cli_finetune_allow_missing_trains_and_names_the_random_layer(files, tmp_path):
    result = run_cli("finetune", files["wrong_shape.safetensors"], "--allow-missing", "--data", files["data"],
                     "--epochs", "1", "--batch-size", "4", "--subset", "2", "--test-subset", "2", "--classes", "0-1",
                     "--out", tmp_path / "ft", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "NOT from the file (--allow-missing, random initial values): layer3.2.conv2.weight" in result.stdout


@pytest.mark.parametrize("args,words", [
    ("pretrain --method position --model resnet20", ["--method position", "Vision Transformer", "resnet20",
                                                     "--method rotation"]),
    ("pretrain --method mae --model vit_cifar_tiny --mask-ratio 1.5", ["--mask-ratio", "< 1"]),
    ("finetune {good} --classes 5-12", ["--classes", "names 10, 11, 12", "0..9"]),
    ("finetune {good} --classes 9-5", ["--classes", "reversed"]),
    ("finetune {good} --num-classes 0", ["--num-classes", ">= 1"]),
    ("finetune {good} --num-classes 3 --classes 5-9", ["--num-classes 3", "5 classes"]),
    ("finetune {good} --mode full --freeze-stages 1", ["--freeze-stages", "--mode partial"]),
    ("finetune {good} --mode frozen", ["--mode", "frozen"]),
    ("finetune {good} --epochs -3", ["--epochs", ">= 1", "-3"]),
    ("finetune {good} --lr 0", ["--lr", "> 0"]),
    ("finetune {good} --subset 0", ["--subset", ">= 1"]),
    ("finetune {good} --label-fraction 2", ["--label-fraction", "<= 1"]),
    ("finetune {good} --model resnet21", ["--model", "resnet21"]),
    ("finetune {tmp}/absent.tvz", ["absent.tvz", "no such file"]),
    ("detect train --backbone resnet20 --pretrained {tmp}/absent.tvz", ["--pretrained", "no such file"]),
    ("detect train --backbone resnet20 --pretrained {folder}", ["--pretrained", "is a folder"]),
    ("detect train --backbone resnet20 --pretrained {vit.tvz}", ["--pretrained", "holds a vit_cifar_tiny, "
                                                                  "not a resnet20"]),
    ("detect train --backbone resnet20 --pretrained {wrong_shape.safetensors}", ["--pretrained",
                                                                                  "layer3.2.conv2.weight"]),
    ("detect train --backbone resnet --pretrained {good}", ["--pretrained", "--backbone resnet20"]),
    ("segment train --backbone vit_cifar_small --pretrained {truncated.tvz}", ["--pretrained", "truncated"]),
    ("segment train --epochs 0", ["--epochs", ">= 1"]),
    ("detect predict {good} --threshold 2", ["--threshold", "<= 1"]),
    ("detect eval {good}", ["checkpoint of a classifier, not of a detection model", "python -m tinyvision eval"]),
    ("segment predict {detect.tvz}", ["of a detection model, not of a segmentation model", "detect eval"]),
])
def test_cli_flags_are_checked_before_any_work(files, tmp_path, args, words):
    argv = _format(args, files, tmp_path)
    before = {name: _digest(files[name]) for name in ("folder", "vit.tvz", "wrong_shape.safetensors")}
    assert_fails(run_cli(*argv, "--data", files["data"], cwd=tmp_path), 2, *words)
    assert {name: _digest(files[name]) for name in before} == before
    assert not os.path.exists(tmp_path / "runs")   # no run folder was started


def _format(args, files, tmp_path):
    """``args`` with {name} replaced by the path of ``files[name]`` and {tmp} by tmp_path."""
    for name, path in dict(files, tmp=str(tmp_path)).items():
        args = args.replace("{" + name + "}", path)
    return args.split()
