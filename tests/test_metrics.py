"""Metrics on hand-computed cases."""
import numpy as np
import pytest

from tinyvision import metrics


def test_accuracy_and_topk():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.3, 0.2]])
    targets = np.array([1, 0, 1, 2])
    assert metrics.accuracy(logits, targets) == 0.5                 # rows 0 and 1
    assert metrics.accuracy(np.array([1, 0, 2, 0]), targets) == 0.5
    assert metrics.topk_accuracy(logits, targets, 2) == 0.75        # row 2's target is 2nd; row 3's 3rd
    assert metrics.topk_accuracy(logits, targets, 3) == 1.0
    with pytest.raises(ValueError, match="shape"):
        metrics.accuracy(np.array([1, 2]), np.array([1, 2, 3]))


def test_confusion_matrix_and_precision_recall_f1():
    preds = np.array([0, 0, 1, 1, 1, 2])
    targets = np.array([0, 1, 1, 1, 2, 2])
    cm = metrics.confusion_matrix(preds, targets, 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 2, 0], [0, 1, 1]])
    p, r, f1 = metrics.precision_recall_f1(preds, targets, 3)
    np.testing.assert_allclose(p, [1 / 2, 2 / 3, 1 / 1])
    np.testing.assert_allclose(r, [1 / 1, 2 / 3, 1 / 2])
    np.testing.assert_allclose(f1, [2 / 3, 2 / 3, 2 / 3])
    mp, mr, mf = metrics.precision_recall_f1(preds, targets, 3, average="macro")
    assert mp == pytest.approx((0.5 + 2 / 3 + 1) / 3) and mf == pytest.approx(2 / 3)
    assert metrics.precision_recall_f1(preds, targets, 3, average="micro")[0] == pytest.approx(4 / 6)


def test_precision_of_a_never_predicted_class_is_zero():
    p, r, f1 = metrics.precision_recall_f1(np.array([0, 0]), np.array([0, 1]), 3)
    assert p[1] == 0 and r[1] == 0 and f1[1] == 0 and r[2] == 0


def test_plot_confusion_matrix_writes_png(tmp_path):
    path = tmp_path / "cm.png"
    fig = metrics.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], path=str(path), normalize=True)
    assert path.exists() and path.stat().st_size > 1000
    assert fig.axes


def test_box_iou():
    a = np.array([[0, 0, 2, 2], [1, 1, 3, 3]])
    b = np.array([[1, 1, 3, 3], [4, 4, 5, 5]])
    iou = metrics.box_iou(a, b)
    np.testing.assert_allclose(iou, [[1 / 7, 0], [1, 0]])


def test_mask_iou_per_class_iou_pixel_accuracy():
    pred = np.array([[0, 1], [1, 2]])
    true = np.array([[0, 1], [2, 2]])
    assert metrics.mask_iou(pred == 1, true == 1) == 0.5
    assert metrics.mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    np.testing.assert_allclose(metrics.per_class_iou(pred, true, 4)[:3], [1, 0.5, 0.5])
    assert np.isnan(metrics.per_class_iou(pred, true, 4)[3])
    assert metrics.mean_iou(pred, true, 4) == pytest.approx(2 / 3)
    assert metrics.pixel_accuracy(pred, true) == 0.75
    assert metrics.pixel_accuracy(pred, np.array([[0, 1], [255, 2]]), ignore_index=255) == 1.0
