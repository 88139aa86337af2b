"""Metrics on hand-computed cases."""
import numpy as np
import pytest

import tinyvision as tv
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


def test_micro_average_is_accuracy_and_macro_recall():
    preds = np.array([0, 0, 1, 1, 1, 2])
    targets = np.array([0, 1, 1, 1, 2, 2])
    p, r, f1 = metrics.precision_recall_f1(preds, targets, 3, average="micro")
    assert p == r == f1 == pytest.approx(4 / 6) == metrics.accuracy(preds, targets)
    assert metrics.precision_recall_f1(preds, targets, 3, average="macro")[1] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    with pytest.raises(ValueError, match="average"):
        metrics.precision_recall_f1(preds, targets, 3, average="weighted")


def test_metrics_take_tensors_and_logits():
    logits = tv.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]])
    targets = tv.tensor(np.array([0, 1, 1]))
    assert metrics.accuracy(logits, targets) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(metrics.confusion_matrix(logits, targets, 2), [[1, 0], [1, 1]])


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"targets must be integer class labels in \[0, 3\)"):
        metrics.confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="predictions"):
        metrics.confusion_matrix(np.array([-1, 1]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="expected logits"):
        metrics.topk_accuracy(np.zeros(3), np.zeros(3, np.int64), 1)


def test_box_iou_edge_cases():
    a = np.array([[0, 0, 4, 2]])                          # area 8
    b = np.array([[2, 0, 6, 2],                           # overlap 2x2 = 4: 4 / (8 + 8 - 4) = 1/3
                  [4, 0, 5, 1],                           # touches at x = 4: 0
                  [1, 1, 1, 1],                           # degenerate (area 0) inside a: 0 / 8 = 0
                  [1, 0, 3, 4]])                          # overlap 2x2 = 4: 4 / (8 + 8 - 4) = 1/3
    np.testing.assert_allclose(metrics.box_iou(a, b), [[1 / 3, 0, 0, 1 / 3]])
    assert metrics.box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    np.testing.assert_allclose(metrics.box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]]), [[0.0]])  # empty union


def test_segmentation_metrics_with_ignore_index():
    pred = np.array([[0, 0, 1],
                     [1, 1, 1]])
    true = np.array([[0, 255, 1],
                     [0, 1, 255]])
    # kept pixels (pred, true): (0,0) (1,1) (1,0) (1,1)
    # class 0: TP 1, FP 0, FN 1 -> 1/2;  class 1: TP 2, FP 1, FN 0 -> 2/3
    np.testing.assert_allclose(metrics.per_class_iou(pred, true, 2, ignore_index=255), [1 / 2, 2 / 3])
    assert metrics.mean_iou(pred, true, 2, ignore_index=255) == pytest.approx(7 / 12)
    assert metrics.pixel_accuracy(pred, true, ignore_index=255) == 0.75
    with pytest.raises(ValueError, match="different shapes"):
        metrics.mask_iou(np.zeros((2, 2)), np.zeros((2, 3)))
