"""Segmentation: decoder shapes for both backbones, metrics against hand-computed values,
a few training steps, the CLI."""
import json
import os

import numpy as np
import pytest

import tinyvision as tv
from tinyvision.tasks import segmentation as S

from cifar_fixture import write_cifar_batches
from scene_fixture import losses_of_steps, run_task_cli, tiny_scenes

TINY = {"resnet": dict(widths=(8, 16, 16), blocks=(1, 1, 1), width=16),
        "vit": dict(patch_size=8, embed_dim=32, depth=1, num_heads=2, width=16)}


@pytest.mark.parametrize("backbone", ["resnet", "vit"])
def test_a_few_steps_lower_the_loss(backbone):
    ds = tiny_scenes(8)
    model = S.build_model(ds.num_classes + 1, backbone, **TINY[backbone])
    x, targets = ds.batch(np.arange(8))
    assert model(tv.tensor(x)).shape == (8, 4, 64, 64)
    losses = losses_of_steps(model, x, targets, steps=10, lr=5e-3)
    assert losses[-1] < 0.7 * losses[0], losses
    pred = model.eval().predict(tv.tensor(x[:2]))
    assert pred.shape == (2, 64, 64) and pred.dtype.kind == "i"


def test_flip_tta_makes_the_prediction_mirror_symmetric():
    ds = tiny_scenes(4)
    model = S.build_model(ds.num_classes + 1, "resnet", **TINY["resnet"]).eval()
    x = ds.batch(np.arange(4))[0]
    mirror = np.ascontiguousarray(x[..., ::-1])
    plain, plain_m = model.predict(tv.tensor(x)), model.predict(tv.tensor(mirror))
    assert (plain_m[..., ::-1] != plain).any()       # an untrained network is not symmetric
    tta, tta_m = model.predict(tv.tensor(x), tta_flip=True), model.predict(tv.tensor(mirror), tta_flip=True)
    np.testing.assert_array_equal(tta_m[..., ::-1], tta)
    logits = (model(tv.tensor(x)).numpy() + model(tv.tensor(mirror)).numpy()[..., ::-1]) / 2
    np.testing.assert_array_equal(tta, logits.argmax(1))
    from tinyvision.tasks.loop import predict
    with pytest.raises(ValueError, match="segmentation, not 'detect'"):
        predict("detect", model, ds, tta_flip=True)


def test_setr_decoder_needs_power_of_two_patches():
    with pytest.raises(ValueError, match="power-of-two"):
        S.build_model(3, "vit", img_size=48, patch_size=12, embed_dim=8, depth=1, num_heads=1)


def test_evaluate_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 2]])
    r = S.evaluate(pred, truth, 3)
    # class 0: TP 3, FP 0, FN 1 -> 3/4; class 1: TP 3, FP 1, FN 1 -> 3/5; class 2: TP 0, FP 1 -> 0
    np.testing.assert_allclose(r["iou_per_class"], [3 / 4, 3 / 5, 0.0])
    assert r["miou"] == pytest.approx((3 / 4 + 3 / 5) / 3)
    assert r["pixel_accuracy"] == pytest.approx(6 / 8)


def test_cli_train_eval_predict(tmp_path, capsys):
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    run = run_task_cli
    out, pred = tmp_path / "run", tmp_path / "pred"
    assert run(["segment", "train", "--backbone", "vit", "--data", str(root), "--epochs", "1", "--train-scenes", "4",
                "--test-scenes", "2", "--batch-size", "4", "--out", str(out), "--no-progress"]) == 0
    assert run(["segment", "eval", str(out / "last.tvz"), "--data", str(root)]) == 0
    assert '"miou"' in capsys.readouterr().out
    assert run(["segment", "eval", str(out / "last.tvz"), "--data", str(root), "--tta-flip"]) == 0
    assert '"miou"' in capsys.readouterr().out
    assert run(["segment", "predict", str(out / "last.tvz"), "--data", str(root), "--num", "1", "--out", str(pred)]) == 0
    assert os.listdir(pred) == ["scene_0000.png"]


def test_results_script_scores_with_and_without_flip(tmp_path, capsys):
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "tasks_results.py")
    spec = importlib.util.spec_from_file_location("tasks_results", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    out = tmp_path / "res"
    script.main(["--data", str(root), "--out", str(out), "--only", "segment:vit", "--train-scenes", "8",
                 "--test-scenes", "4", "--epochs", "1", "--tta-flip", "--no-progress"])
    (result,) = json.loads((out / "results_segment-vit.json").read_text())
    assert 0 <= result["metrics_tta_flip"]["miou"] <= 1 and "miou" in result["metrics"]
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    assert row[7].strip() == f"{result['metrics']['miou']:.3f}" and row[8].strip() == f"{result['metrics_tta_flip']['miou']:.3f}"


def test_fit_stops_on_a_non_finite_loss(tmp_path):
    from tinyvision.tasks.loop import TaskConfig, fit
    cfg = TaskConfig(task="segment", backbone="resnet", epochs=1, batch_size=2, lr=float("nan"),
                     out=str(tmp_path / "run"), model_kwargs=TINY["resnet"])
    with pytest.raises(FloatingPointError, match="segment loss became nan"):
        fit(cfg, tiny_scenes(4), tiny_scenes(2, seed=1), progress=False)
