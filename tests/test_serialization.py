"""tv.save / tv.load: round trips, the file layout, atomic writes and clear errors."""
import json
import os
import zipfile

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import nn, serialization

from test_nn import every_layer_model


def test_nested_round_trip_keeps_types(tmp_path):
    obj = {
        "model": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).state_dict(),
        "optimizer": {"state": {0: {"momentum": np.arange(3.0)}, 1: {}},
                      "groups": [{"lr": 0.1, "params": [0, 1], "betas": (0.9, 0.999)}]},
        "rng": tv.backend.get_rng_state(),  # 128-bit integers
        "misc": [None, True, 3, 2.5, float("nan"), float("inf"), "text", np.float32(1.5), np.int64(7)],
        "tensor": tv.randn(2, 3),
        "tagged_key": {"__array__": "not an array"},
        "ints": np.arange(5, dtype=np.int16),
    }
    path = tmp_path / "ckpt.tvz"
    tv.save(obj, path)
    back = tv.load(path)
    assert list(back["model"]) == list(obj["model"])
    for k, v in obj["model"].items():
        assert back["model"][k].dtype == v.dtype and np.array_equal(back["model"][k], v)
    assert set(back["optimizer"]["state"]) == {0, 1}
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["momentum"], np.arange(3.0))
    assert back["optimizer"]["groups"][0]["betas"] == (0.9, 0.999)
    assert back["rng"] == obj["rng"]
    misc = back["misc"]
    assert misc[:4] == [None, True, 3, 2.5] and np.isnan(misc[4]) and misc[5] == np.inf
    assert misc[6:] == ["text", 1.5, 7] and type(misc[8]) is int
    np.testing.assert_array_equal(back["tensor"], obj["tensor"].numpy())
    assert back["tagged_key"] == {"__array__": "not an array"}
    assert back["ints"].dtype == np.int16


def test_file_is_an_npz_with_flat_names_and_json_meta(tmp_path):
    path = tmp_path / "m.tvz"
    tv.save({"model": nn.Linear(2, 3).state_dict(), "epoch": 4}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__meta__.json", "model/bias", "model/weight"]
        meta = json.loads(npz["__meta__.json"])
    assert meta["format"] == "tinyvision" and meta["tree"]["epoch"] == 4
    assert meta["tree"]["model"]["weight"] == {"__array__": "model/weight"}


def test_atomic_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.tvz"
    tv.save({"a": np.zeros(3)}, path)
    calls = []

    def failing_write(member, array, allow_pickle):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        member.write(b"partial")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        tv.save({"a": np.ones(3), "b": np.ones(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.tvz"]
    np.testing.assert_array_equal(tv.load(path)["a"], np.zeros(3))


def test_unsavable_values_are_refused(tmp_path):
    with pytest.raises(TypeError, match="a/b"):
        tv.save({"a": {"b": object()}}, tmp_path / "x.tvz")
    with pytest.raises(TypeError, match="dtype object"):
        tv.save({"a": np.array([None, 1], dtype=object)}, tmp_path / "x.tvz")
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        tv.load(tmp_path / "missing.tvz")
    text = tmp_path / "text.tvz"
    text.write_text("hello")
    with pytest.raises(serialization.SerializationError, match="not a tinyvision file"):
        tv.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(2))
    with pytest.raises(serialization.SerializationError, match="no __meta__.json"):
        tv.load(plain)
    good = tmp_path / "good.tvz"
    tv.save({"w": np.arange(1000.0)}, good)
    data = bytearray(good.read_bytes())
    offset = data.index(b"\x93NUMPY") + 200
    data[offset] ^= 0xFF  # flip a byte inside the array: the zip checksum no longer matches
    bad = tmp_path / "bad.tvz"
    bad.write_bytes(bytes(data))
    with pytest.raises(serialization.SerializationError, match="corrupt"):
        tv.load(bad)
    truncated = tmp_path / "truncated.tvz"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(serialization.SerializationError):
        tv.load(truncated)
    with zipfile.ZipFile(tmp_path / "meta.tvz", "w") as zf:
        zf.writestr("__meta__.json", json.dumps({"format": "tinyvision", "version": 1,
                                                  "tree": {"w": {"__array__": "gone"}}}))
    with pytest.raises(serialization.SerializationError, match="'gone' is missing"):
        tv.load(tmp_path / "meta.tvz")


def _every_layer():
    """Every layer type: the forward chain of the nn tests, plus the layers outside it."""
    return nn.Sequential(every_layer_model(), nn.ModuleDict({"emb": nn.Embedding(5, 6)}),
                         nn.ModuleList([nn.LeakyReLU(), nn.Tanh(), nn.CrossEntropyLoss(), nn.MSELoss()]))


def test_model_round_trip_every_layer(tmp_path):
    a = _every_layer()
    a.train()
    a[0](tv.randn(2, 3, 8, 8))  # move the batch-norm running statistics away from 0 and 1
    path = tmp_path / "model.tvz"
    tv.save({"model": a.state_dict()}, path)
    b = _every_layer()
    b.load_state_dict(tv.load(path)["model"])
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    a.eval(), b.eval()
    x = tv.randn(2, 3, 8, 8)
    np.testing.assert_array_equal(a[0](x).numpy(), b[0](x).numpy())
