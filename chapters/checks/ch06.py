"""Self-checks of chapter 6's exercises: the IoU of two boxes, inverse-frequency class weights,
non-maximum suppression and mIoU from a confusion matrix, each against tinyvision's own."""
import numpy as np

from tinyvision import data, metrics
from tinyvision.tasks import detection

from . import as_array, self_check


def _random_boxes(rng, n, size=64.0):
    """n boxes (x1, y1, x2, y2) inside a size x size canvas, sides 2 to 30."""
    xy = rng.uniform(0, size - 30, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(2, 30, (n, 2))], 1)


@self_check
def box_iou(iou):
    """Exercise: iou(a, b) of two boxes (x1, y1, x2, y2), against ``metrics.box_iou``."""
    cases = [([0, 0, 10, 10], [0, 0, 10, 10], "identical boxes"),
             ([0, 0, 10, 10], [5, 0, 15, 10], "half of each overlaps"),
             ([0, 0, 10, 10], [2, 2, 6, 6], "one box inside the other"),
             ([0, 0, 10, 10], [10, 0, 20, 10], "boxes that touch along an edge"),
             ([0, 0, 10, 10], [20, 0, 30, 10], "boxes apart left-right: clip the overlap's width at 0"),
             ([0, 0, 10, 10], [20, 20, 30, 30], "boxes apart diagonally: the overlap's width and height are "
                                                 "both negative; clip each at 0, not their product"),
             ([0, 0, 0, 10], [0, 0, 10, 10], "a box of zero width")]
    rng = np.random.default_rng(0)
    cases += [(a, b, "random boxes") for a, b in zip(_random_boxes(rng, 50), _random_boxes(rng, 50))]
    for a, b, what in cases:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        got = iou(a, b)
        if got is None:
            return False, "iou(a, b) returned None; return one number"
        want = float(metrics.box_iou(a[None], b[None])[0, 0])
        if not np.isclose(float(got), want, rtol=1e-6, atol=1e-9):
            return False, f"iou({a.tolist()}, {b.tolist()}) = {float(got):.4f}, expected {want:.4f} ({what})"
    return True, f"your IoU equals metrics.box_iou on {len(cases)} pairs (edge cases and random boxes)"


@self_check
def class_weights(weights_fn, ratio):
    """Exercise: w_c = N / (C n_c) rescaled to mean 1, against ``data.class_weights``; and the
    predicted ratio of the rarest class's weight to the most frequent's at imbalance factor 10."""
    ratio = float(ratio)
    for counts in ([500, 387, 300, 232, 180, 139, 108, 83, 65, 50], [10, 10, 10], [1, 2, 3, 1000], [7, 70]):
        counts = np.asarray(counts)
        want = data.class_weights(np.repeat(np.arange(len(counts)), counts), len(counts)).astype(np.float64)
        got, problem = as_array(weights_fn(counts), want.shape, "inverse_frequency_weights(counts)")
        if problem:
            return False, problem
        if not np.allclose(got, want, rtol=1e-5):
            hint = (" (the weights are right up to a factor: rescale them so that their mean is 1)"
                    if np.allclose(got / got.mean(), want, rtol=1e-5) else " (w_c = N / (C n_c), then divide by the mean)")
            return False, f"for counts {counts.tolist()} you gave {np.round(got, 3).tolist()}, expected " \
                          f"{np.round(want, 3).tolist()}{hint}"
    if not np.isclose(ratio, 10.0, rtol=1e-3):
        return False, f"weights right; the predicted ratio {ratio:g} is not what they give: w_c is proportional to " \
                      f"1 / n_c, so the ratio is n_head / n_tail"
    return True, "weights equal data.class_weights on four count vectors; the ratio is the imbalance factor, 10: " \
                 "every class then carries the same total weight n_c w_c"


@self_check
def nms(nms_fn):
    """Exercise: greedy non-maximum suppression, against ``tasks.detection.nms``."""
    rng = np.random.default_rng(3)
    cases = [(np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float), np.array([0.6, 0.9]), 0.5,
              "two identical boxes: keep the better-scored one"),
             (np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], float), np.array([0.9, 0.8, 0.7]), 0.3,
              "a chain: box 1 overlaps boxes 0 and 2 by IoU 1/3, boxes 0 and 2 do not overlap")]
    for k in range(6):                     # clusters of jittered boxes around a few centres
        centres = _random_boxes(rng, 4)
        boxes = np.repeat(centres, 5, 0) + rng.normal(0, 2.5, (20, 4))
        cases.append((boxes, rng.uniform(0, 1, 20), [0.3, 0.5, 0.7][k % 3], "clusters of overlapping boxes"))
    for boxes, scores, threshold, what in cases:
        want = detection.nms(boxes, scores, threshold)
        got = nms_fn(boxes, scores, threshold)
        if got is None:
            return False, "nms(boxes, scores, iou_threshold) returned None; return the kept indices"
        got = np.asarray(got, np.int64).ravel()
        if np.array_equal(got, want):
            continue
        if sorted(got.tolist()) == sorted(want.tolist()):
            return False, f"the right boxes, but in the order {got.tolist()} instead of {want.tolist()}: return " \
                          f"them by descending score ({what})"
        return False, f"kept {got.tolist()}, expected {want.tolist()} at iou_threshold {threshold} ({what}): take " \
                      f"the best remaining box, then drop every remaining box whose IoU with it exceeds the threshold"
    return True, f"your NMS keeps the same boxes, in the same order, as tasks.detection.nms on {len(cases)} cases"


@self_check
def miou_from_confusion(miou_fn):
    """Exercise: mIoU from a confusion matrix, against ``metrics.mean_iou`` of the label maps."""
    rng = np.random.default_rng(4)
    for k, absent in [(4, None), (6, 2), (11, 5)]:
        target = rng.integers(0, k, (3, 16, 16))
        pred = np.where(rng.uniform(size=target.shape) < 0.6, target, rng.integers(0, k, target.shape))
        if absent is not None:        # a class in neither map: its IoU is 0/0 and it leaves the mean
            target[target == absent] = (absent + 1) % k
            pred[pred == absent] = (absent + 1) % k
        cm = metrics.confusion_matrix(pred, target, k)
        want = metrics.mean_iou(pred, target, k)
        got = miou_fn(cm)
        if got is None:
            return False, "miou_from_confusion(cm) returned None; return one number"
        if not np.isclose(float(got), want, rtol=1e-9):
            hint = (" (a class that is in neither the truth nor the prediction has no IoU: leave it out of the mean)"
                    if absent is not None else " (IoU_c = C[c, c] / (row sum + column sum - C[c, c]))")
            return False, f"{float(got):.4f}, expected {want:.4f} for a {k}x{k} confusion matrix{hint}"
    return True, "your mIoU equals metrics.mean_iou on three label maps, one with a class absent from both"
