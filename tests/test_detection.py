"""Detection: focal loss (values and float64 gradient check), target assignment and decoding
round trip, NMS, IoU/AP/precision/recall on hand-computed cases, a few training steps, CLI."""
import os

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import metrics
from tinyvision.tasks import detection as D

from cifar_fixture import write_cifar_batches
from scene_fixture import losses_of_steps, run_task_cli, tiny_scenes

TINY_RESNET = dict(widths=(8, 16, 16), blocks=(1, 1, 1))
TINY_VIT = dict(patch_size=8, embed_dim=32, depth=1, num_heads=2)


# ---------------------------------------------------------------- focal loss
def test_focal_loss_matches_formula_by_hand():
    z = np.array([[[[0.0, 2.0], [-1.0, 3.0]]]])
    y = np.array([[[[1.0, 0.5], [0.0, 1.0]]]])
    p = 1 / (1 + np.exp(-z))
    pos = (1 - p) ** 2 * np.log(p)
    neg = (1 - y) ** 4 * p ** 2 * np.log(1 - p)
    expected = -(pos[y == 1].sum() + neg[y < 1].sum()) / 2
    got = D.focal_loss(tv.tensor(z, dtype=np.float64), y, num=2).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_focal_loss_gradcheck_float64():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (2, 3, 4, 5))
    y = rng.uniform(0, 0.99, (2, 3, 4, 5))
    y[0, 1, 2, 3] = y[1, 0, 0, 0] = 1.0
    assert tv.gradcheck(lambda a: D.focal_loss(a, y, num=2), tv.tensor(z, dtype=np.float64, requires_grad=True))


def test_focal_loss_is_finite_for_extreme_logits():
    z = tv.tensor(np.array([[[[80.0, -80.0]]]]), requires_grad=True)
    loss = D.focal_loss(z, np.array([[[[0.0, 1.0]]]]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(z.grad.numpy()).all() and loss.item() > 50


# ---------------------------------------------------------------- targets and decoding
def test_encode_targets_peaks_sizes_offsets():
    t = D.encode_targets([dict(boxes=np.array([[4.0, 8.0, 20.0, 16.0]]), labels=np.array([2]))], 3, 16, stride=4)
    # centre (12, 12) px -> (3, 3) cells; size (16, 8) px -> (4, 2) cells
    assert t["heat"][0, 2, 3, 3] == 1.0 and t["heat"][0, 2].sum() > 1 and t["heat"][0, :2].max() == 0
    assert t["mask"].sum() == 1 and t["mask"][0, 0, 3, 3] == 1
    np.testing.assert_allclose(t["size"][0, :, 3, 3], [4, 2])
    np.testing.assert_allclose(t["offset"][0, :, 3, 3], [0, 0])
    assert t["num"] == 1.0
    assert t["heat"][0, 2, 3, 2] > t["heat"][0, 2, 2, 3]        # wider than tall: spreads more along x


def test_encode_then_decode_gives_the_boxes_back():
    ds = tiny_scenes(12)
    targets = [ds.target(i) for i in range(len(ds))]
    t = D.encode_targets(targets, ds.num_classes, 16)
    dets = D.decode(t["heat"], t["size"], t["offset"], stride=4, k=10, threshold=0.99)
    for d, g in zip(dets, targets):
        order = np.lexsort(g["boxes"].T[::-1])
        found = np.lexsort(d["boxes"].T[::-1])
        np.testing.assert_allclose(d["boxes"][found], g["boxes"][order], atol=1e-4)
        np.testing.assert_array_equal(d["labels"][found], g["labels"][order])
    assert D.evaluate(dets, targets, ds.num_classes)["ap"] == pytest.approx(1.0)


def test_peaks_are_3x3_local_maxima():
    heat = np.zeros((1, 1, 5, 5))
    heat[0, 0, 1, 1], heat[0, 0, 1, 2], heat[0, 0, 4, 4] = 0.9, 0.5, 0.3
    assert sorted(zip(*np.nonzero(D.peaks(heat)[0, 0] & (heat[0, 0] > 0)))) == [(1, 1), (4, 4)]


# ---------------------------------------------------------------- NMS and metrics
def test_box_iou_by_hand():
    iou = metrics.box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]))
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])


def test_nms_and_batched_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    np.testing.assert_array_equal(D.nms(boxes, scores, 0.5), [3, 2])
    labels = np.array([0, 1, 0, 0])             # box 1 is another class: kept
    np.testing.assert_array_equal(D.batched_nms(boxes, scores, labels, 0.5), [3, 1, 2])


def _gt(boxes, labels):
    return dict(boxes=np.array(boxes, np.float32).reshape(-1, 4), labels=np.array(labels))


def _det(boxes, scores, labels):
    return dict(boxes=np.array(boxes, np.float32).reshape(-1, 4), scores=np.array(scores), labels=np.array(labels))


def test_ap_101_point_by_hand():
    # two ground truths; detections by score: TP, FP (duplicate), TP
    gts = [_gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    dets = [_det([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])]
    # precision (1, 1/2, 2/3), recall (1/2, 1/2, 1); envelope (1, 2/3, 2/3):
    # r = 0.00 .. 0.50 (51 points) -> 1, r = 0.51 .. 1.00 (50 points) -> 2/3
    ap, per_class = D.average_precision(dets, gts, 2)
    assert ap == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert np.isnan(per_class[1])                # no ground truth for class 1: left out


def test_ap_over_iou_thresholds_and_wrong_class():
    gts = [_gt([[0, 0, 10, 10]], [0]), _gt([[0, 0, 10, 10]], [1])]
    # IoU of [0,0,10,10] and [0,0,10,7.2] = 0.72: a hit at IoU 0.50..0.70 (5 of 10 thresholds)
    dets = [_det([[0, 0, 10, 7.2]], [0.9], [0]), _det([[0, 0, 10, 10]], [0.9], [0])]
    result = D.evaluate(dets, gts, 2)
    # class 0: 1 TP of 1 GT (plus an FP in image 2, scored equal, after the TP) -> AP50 1;
    # class 1: never detected -> 0
    assert result["ap50_per_class"] == pytest.approx([1.0, 0.0])
    assert result["ap50"] == pytest.approx(0.5)
    assert result["ap"] == pytest.approx((5 * 0.5 + 5 * 0.0) / 10)
    assert result["precision"] == pytest.approx(0.5) and result["recall"] == pytest.approx(0.5)


def test_precision_recall_threshold():
    gts = [_gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    dets = [_det([[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30]], [0.9, 0.6, 0.1], [0, 0, 0])]
    assert D.precision_recall(dets, gts, 1, 0.5, 0.3) == pytest.approx((0.5, 0.5))
    assert D.precision_recall(dets, gts, 1, 0.5, 0.05) == pytest.approx((2 / 3, 1.0))


# ---------------------------------------------------------------- model and training
@pytest.mark.parametrize("backbone, kwargs", [("resnet", TINY_RESNET), ("vit", TINY_VIT)])
def test_a_few_steps_lower_the_loss(backbone, kwargs):
    ds = tiny_scenes(8)
    model = D.build_model(ds.num_classes, backbone, **kwargs)
    x, targets = ds.batch(np.arange(8))
    heat, reg = model(tv.tensor(x))
    assert heat.shape == (8, 3, 16, 16) and reg.shape == (8, 4, 16, 16)
    losses = losses_of_steps(model, x, targets, steps=12, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0], losses
    dets = model.eval().predict(tv.tensor(x[:2]), k=5, threshold=0.0)
    assert len(dets) == 2 and dets[0]["boxes"].shape[1] == 4 and len(dets[0]["scores"]) <= 5


def test_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of 8"):
        D.build_model(3, "resnet", img_size=60)
    with pytest.raises(ValueError, match="backbone"):
        D.build_model(3, "vgg")


def test_cli_train_eval_predict(tmp_path, capsys):
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    out = tmp_path / "run"
    assert run_task_cli(["detect", "train", "--data", str(root), "--epochs", "1", "--train-scenes", "8",
                     "--test-scenes", "4", "--batch-size", "4", "--out", str(out), "--no-progress"]) == 0
    assert (out / "last.tvz").exists() and (out / "metrics.json").exists()
    assert run_task_cli(["detect", "eval", str(out / "last.tvz"), "--data", str(root)]) == 0
    assert '"ap50"' in capsys.readouterr().out
    pred = tmp_path / "pred"
    assert run_task_cli(["detect", "predict", str(out / "last.tvz"), "--data", str(root), "--num", "2",
                     "--out", str(pred)]) == 0
    assert sorted(os.listdir(pred)) == ["scene_0000.png", "scene_0001.png"]
