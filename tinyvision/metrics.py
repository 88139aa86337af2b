"""Evaluation metrics (article section 5.2) on NumPy arrays (Tensors are accepted too).

Classification, with K classes, predictions p_i and targets t_i:
    accuracy            = mean_i [p_i = t_i]
    top-k accuracy      = mean_i [t_i among the k largest logits of i]
    confusion matrix    C[t, p] = #{i : t_i = t, p_i = p}       (rows: truth, columns: prediction)
    precision_c = TP_c / (TP_c + FP_c),  recall_c = TP_c / (TP_c + FN_c),
    F1_c = 2 P_c R_c / (P_c + R_c)      (0/0 is defined as 0: a class never predicted has
                                          precision 0, a class never present recall 0)
Boxes and masks:
    IoU(A, B) = |A n B| / |A u B|;  mIoU = mean over classes of per-class IoU;
    pixel accuracy = mean over pixels of [prediction = truth].
"""
import numpy as np

from . import backend


def _np(x):
    """A host NumPy array from a NumPy/CuPy array, a Tensor (``.numpy()``) or a list."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return x.numpy()
    return backend.to_numpy(x) if hasattr(x, "shape") else np.asarray(x)


def _preds(logits_or_preds):
    a = _np(logits_or_preds)
    return a.argmax(axis=1) if a.ndim == 2 else a


def _labels(a, num_classes, what):
    """Flattened int64 labels, checked to lie in [0, num_classes)."""
    a = np.asarray(a).ravel()
    if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"{what} must be integer class labels in [0, {num_classes}), got "
                         f"{a.dtype} values in [{a.min()}, {a.max()}]")
    return a.astype(np.int64, copy=False)


def _safe_div(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def accuracy(logits_or_preds, targets):
    """Fraction of correct predictions, mean_i [p_i = t_i] (0.0 for no samples).

    Inputs:
        logits_or_preds: scores (N, K) (argmax taken) or predicted classes (N,).
        targets: true classes (N,).
    Returns:
        float.
    """
    p, t = _preds(logits_or_preds), _np(targets)
    if p.shape != t.shape:
        raise ValueError(f"accuracy: predictions {p.shape} and targets {t.shape} differ in shape")
    return float((p == t).mean()) if t.size else 0.0


def topk_accuracy(logits, targets, k=5):
    """Fraction of samples whose target is among their k highest scores (k is capped at K;
    among tied scores at the k-th place, which ones count is unspecified).

    Inputs:
        logits: scores (N, K).
        targets: true classes (N,).
        k: how many of the top scores count.
    Returns:
        float.
    """
    z, t = _np(logits), _np(targets)
    if z.ndim != 2 or t.shape != (len(z),):
        raise ValueError(f"topk_accuracy: expected logits (N, K) and targets (N,), got {z.shape} and {t.shape}")
    k = min(k, z.shape[1])
    top = np.argpartition(-z, k - 1, axis=1)[:, :k]
    return float((top == t[:, None]).any(axis=1).mean())


def confusion_matrix(preds, targets, num_classes):
    """Counts of (true class, predicted class) pairs.

    Inputs:
        preds: predicted classes (any shape), or scores (N, K).
        targets: true classes, as many as preds.
        num_classes: K.
    Returns:
        C int64 (K, K), C[t, p] = #{i : t_i = t, p_i = p}: rows are the truth.
    """
    p = _labels(_preds(preds), num_classes, "predictions")
    t = _labels(_np(targets), num_classes, "targets")
    if p.shape != t.shape:
        raise ValueError(f"confusion_matrix: {p.size} predictions but {t.size} targets")
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def precision_recall_f1(preds, targets, num_classes, average=None):
    """Precision, recall and F1 from the confusion matrix C (rows truth, columns prediction):

        TP_c = C[c, c],  FP_c = sum_t C[t, c] - TP_c,  FN_c = sum_p C[c, p] - TP_c,
        P_c = TP_c / (TP_c + FP_c),  R_c = TP_c / (TP_c + FN_c),  F1_c = 2 P_c R_c / (P_c + R_c),

    with 0/0 := 0 (a class never predicted has precision 0; one never present, recall 0).

    Inputs:
        preds, targets, num_classes: as for ``confusion_matrix``.
        average: None -> three float64 arrays (K,); 'macro' -> three floats, the unweighted
            means over all K classes; 'micro' -> three floats from the pooled counts (for
            single-label classification all three equal the accuracy).
    """
    cm = confusion_matrix(preds, targets, num_classes)
    tp = np.diag(cm).astype(np.float64)
    fp, fn = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    if average == "macro":
        return float(precision.mean()), float(recall.mean()), float(f1.mean())
    if average == "micro":
        return float(precision), float(recall), float(f1)
    if average is not None:
        raise ValueError(f"average must be None, 'macro' or 'micro', got {average!r}")
    return precision, recall, f1


def plot_confusion_matrix(cm, class_names, path=None, normalize=False, title="confusion matrix"):
    """Heat map of a confusion matrix (rows: truth); with normalize, each row sums to 1.
    Saves a PNG to ``path`` (atomically) when given; returns the matplotlib Figure."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    cm = np.asarray(_np(cm), dtype=np.float64)
    if cm.shape != (len(class_names), len(class_names)):
        raise ValueError(f"plot_confusion_matrix: a ({len(class_names)}, {len(class_names)}) matrix for "
                         f"{len(class_names)} class names, got {cm.shape}")
    shown = _safe_div(cm, cm.sum(axis=1, keepdims=True)) if normalize else cm
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.55 * k))
    im = ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}", ha="center",
                    va="center", fontsize=7, color="white" if shown[i, j] > shown.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    if path is not None:
        from .plots import save_figure
        save_figure(fig, path)
    return fig


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union of axis-aligned boxes.

    IoU(a, b) = |a n b| / (|a| + |b| - |a n b|), with |a| = (x2 - x1)(y2 - y1) (0 for a
    degenerate box) and 0 where the union is empty.

    Inputs:
        boxes1: (N, 4) as (x1, y1, x2, y2).
        boxes2: (M, 4) likewise.
    Returns:
        float64 (N, M).
    """
    a, b = _np(boxes1).astype(np.float64).reshape(-1, 4), _np(boxes2).astype(np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    w = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    h = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(0)
    inter = w * h
    return _safe_div(inter, area_a[:, None] + area_b[None, :] - inter)


def mask_iou(pred_mask, true_mask):
    """IoU = |P n T| / |P u T| of two masks of the same shape (nonzero = inside); 1.0 when both
    are empty (a correct prediction of "nothing here")."""
    p, t = _np(pred_mask).astype(bool), _np(true_mask).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"mask_iou: masks of different shapes {p.shape} and {t.shape}")
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def per_class_iou(pred, target, num_classes, ignore_index=None):
    """IoU per class of two label maps (segmentation):

        IoU_c = TP_c / (TP_c + FP_c + FN_c)   (counts over pixels, from the confusion matrix),

    NaN for a class absent from both prediction and truth. Pixels whose target is
    ``ignore_index`` are left out.

    Inputs:
        pred, target: integer label maps of one shape, e.g. (N, H, W).
    Returns:
        float64 (num_classes,).
    """
    p, t = _np(pred).ravel(), _np(target).ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    cm = confusion_matrix(p, t, num_classes).astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mean_iou(pred, target, num_classes, ignore_index=None):
    """mIoU: the mean of per-class IoU over the classes present in prediction or truth."""
    return float(np.nanmean(per_class_iou(pred, target, num_classes, ignore_index)))


def pixel_accuracy(pred, target, ignore_index=None):
    """Fraction of pixels labelled correctly, mean over pixels of [pred = target], leaving out
    pixels whose target is ``ignore_index`` (0.0 when none is left)."""
    p, t = _np(pred).ravel(), _np(target).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pixel_accuracy: {p.size} predicted pixels but {t.size} target pixels")
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    return float((p == t).mean()) if t.size else 0.0
