"""Solutions to the exercises of chapter 6 (chapters/06_projects.ipynb, "Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np


def iou(a, b):
    """Exercise 1. The overlap is the rectangle from the larger of the two left (top) edges to
    the smaller of the two right (bottom) edges; its width and height are clipped at 0 one by one
    (two negative sides would otherwise multiply to a positive area). IoU = overlap / union, with
    union = |a| + |b| - overlap, and 0 when the union is empty."""
    overlap_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    overlap_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = overlap_w * overlap_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


def inverse_frequency_weights(counts):
    """Exercise 2. w_c = N / (C n_c), then divided by its mean so that the weights average 1
    (the loss keeps its scale, so does the learning rate's meaning)."""
    counts = np.asarray(counts, np.float64)
    w = counts.sum() / (len(counts) * counts)
    return w / w.mean()


# Exercise 2, the prediction: w_c is proportional to 1 / n_c, so w_tail / w_head = n_head / n_tail,
# the imbalance factor. Each class then weighs n_c w_c, the same for all: the weighted loss sees
# the long-tailed set as if it were balanced.
weight_ratio = 10.0


def nms(boxes, scores, iou_threshold):
    """Exercise 3. Greedy: visit the boxes by descending score; keep a box unless it overlaps a
    box already kept by more than the threshold. (Comparing with every better-scored box, kept or
    not, would also drop boxes that only overlap suppressed ones.)"""
    kept = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if all(iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(int(i))
    return np.array(kept, np.int64)


def miou_from_confusion(cm):
    """Exercise 4. With C[t, p] (rows truth): TP_c = C[c, c], FN_c = row sum - TP_c, FP_c =
    column sum - TP_c, so IoU_c = TP_c / (TP_c + FP_c + FN_c) = C[c, c] / (row_c + col_c - C[c, c]).
    A class in neither map has 0 / 0, no IoU: the mean runs over the other classes."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean())
