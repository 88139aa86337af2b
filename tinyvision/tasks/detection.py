"""Single-stage anchor-free detection in the style of CenterNet (Zhou et al., "Objects as
Points", 2019).

An object is the peak of a class heatmap at its centre, plus a size and a sub-cell offset
read at that peak. On a feature map of stride s (4 here):

    centre  c = ((x1 + x2) / 2, (y1 + y2) / 2) / s,   peak cell p = floor(c),   offset o = c - p
    size    (w, h) / s
    heatmap Y[k, y, x] = max over objects of class k of
            exp(-(x - p_x)^2 / (2 sigma_x^2) - (y - p_y)^2 / (2 sigma_y^2)),
            sigma = alpha (w, h) / (6 s),  alpha = 0.54  (TTFNet's box-shaped Gaussian)

Losses (N = number of objects in the batch, P = sigmoid of the heatmap logits):

    focal   L_k = -1/N sum { (1 - P)^a log P                 where Y = 1
                           { (1 - Y)^b P^a log(1 - P)        elsewhere          a = 2, b = 4
    size    L_size = 1/N sum over peaks |(w, h)_pred - (w, h) / s|          (weight 0.1)
    offset  L_off  = 1/N sum over peaks |o_pred - o|                        (weight 1)

Decoding keeps the cells that equal the 3x3 max-pool of the heatmap (local peaks), takes the
top k scores, rebuilds boxes from size and offset, and removes class-wise duplicates with
non-maximum suppression. Evaluation: precision and recall at IoU 0.5, AP@0.5 and COCO's
AP@[.5:.95] (``average_precision``).
"""
import numpy as np

from .. import metrics, nn, ops
from ..tensor import Function, Tensor, no_grad
from .backbones import build_backbone, conv_bn_relu

STRIDE = 4
SIGMA_ALPHA = 0.54


# ---------------------------------------------------------------- target assignment
def encode_targets(targets, num_classes, out_size, stride=STRIDE):
    """Dense training targets for a batch.

    Inputs:
    - targets: list of B dicts with boxes float (k, 4) xyxy in pixels and labels int (k,).
    - num_classes: C; out_size: side h = w of the output maps; stride: pixels per cell.

    Returns a dict of float32 arrays:
    - heat (B, C, h, w): Gaussian peaks (exactly 1 at each object's cell)
    - size (B, 2, h, w), offset (B, 2, h, w): (w, h) / s and c - p at the peak cells, 0 elsewhere
    - mask (B, 1, h, w): 1 at peak cells
    - num: number of objects (float, at least 1: the losses' divisor)
    """
    B = len(targets)
    heat = np.zeros((B, num_classes, out_size, out_size), np.float32)
    size = np.zeros((B, 2, out_size, out_size), np.float32)
    offset = np.zeros((B, 2, out_size, out_size), np.float32)
    mask = np.zeros((B, 1, out_size, out_size), np.float32)
    grid = np.arange(out_size, dtype=np.float32)
    n = 0
    for b, t in enumerate(targets):
        boxes = np.asarray(t["boxes"], np.float32).reshape(-1, 4) / stride
        for (x1, y1, x2, y2), k in zip(boxes, np.asarray(t["labels"]).reshape(-1)):
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            px, py = min(int(cx), out_size - 1), min(int(cy), out_size - 1)
            sx, sy = max(SIGMA_ALPHA * (x2 - x1) / 6, 1e-3), max(SIGMA_ALPHA * (y2 - y1) / 6, 1e-3)
            g = np.exp(-(grid[None, :] - px) ** 2 / (2 * sx ** 2) - (grid[:, None] - py) ** 2 / (2 * sy ** 2))
            np.maximum(heat[b, k], g, out=heat[b, k])
            size[b, :, py, px] = (x2 - x1, y2 - y1)
            offset[b, :, py, px] = (cx - px, cy - py)
            mask[b, 0, py, px] = 1.0
            n += 1
    return dict(heat=heat, size=size, offset=offset, mask=mask, num=float(max(n, 1)))


# ---------------------------------------------------------------- focal loss
def _log_sigmoid(xp, z):
    """log sigmoid(z) = -softplus(-z), computed without overflow."""
    return -(xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(-z, 0))


class FocalLoss(Function):
    """CenterNet's penalty-reduced focal loss on heatmap logits z with Gaussian targets Y.

        P = sigmoid(z)
        loss = -1/N [ sum_{Y=1} (1 - P)^a log P  +  sum_{Y<1} (1 - Y)^b P^a log(1 - P) ]

    Gradient (dP/dz = P (1 - P)), per element:
        Y = 1:   -(1 - P)^a (1 - P - a P log P) / N
        Y < 1:   (1 - Y)^b P^a (P - a (1 - P) log(1 - P)) / N

    Shapes: z and Y (B, C, h, w) -> scalar.
    """

    def forward(self, z, y, num=1.0, alpha=2.0, beta=4.0):
        xp = self.xp
        logp, log1mp = _log_sigmoid(xp, z), _log_sigmoid(xp, -z)
        p = xp.exp(logp)
        pos = y >= 1
        wneg = (1 - y) ** beta * p ** alpha
        pos_term = (1 - p) ** alpha * logp
        loss = -(xp.where(pos, pos_term, 0).sum() + xp.where(pos, 0, wneg * log1mp).sum()) / num
        self.saved = (p, logp, log1mp, pos, wneg, num, alpha)
        return xp.asarray(loss, dtype=z.dtype)

    def backward(self, g):
        xp = self.xp
        p, logp, log1mp, pos, wneg, num, alpha = self.saved
        dpos = -(1 - p) ** alpha * (1 - p - alpha * p * logp)
        dneg = wneg * (p - alpha * (1 - p) * log1mp)
        return (g * xp.where(pos, dpos, dneg) / num).astype(p.dtype), None


def focal_loss(logits, target, num=1.0, alpha=2.0, beta=4.0):
    """See ``FocalLoss``: logits Tensor (B, C, h, w), target array (B, C, h, w), num = N."""
    return FocalLoss.apply(logits, target, num=float(num), alpha=float(alpha), beta=float(beta))


# ---------------------------------------------------------------- the model
class CenterNet(nn.Module):
    """Backbone, a neck that brings the last features to stride 4, and two heads.

    Neck: top = the ResNet's last stage (stride 8; 4 for ResNet-20) or the ViT token grid
    (stride = patch size);
        x = conv_bn_relu(upsample_bilinear(top) to stride 4)  [+ 1x1 conv of an earlier stride-4 stage]
        x = conv_bn_relu(x)
    Heads (each conv3x3 + ReLU + conv1x1): heatmap logits (C channels, bias -2.19 so that
    P starts at 0.1) and regression (4 channels: size w, h and offset x, y).

    Shapes: x (B, 3, S, S) -> heat logits (B, C, S/4, S/4), regression (B, 4, S/4, S/4).
    """

    def __init__(self, num_classes, backbone="resnet", img_size=64, width=64, **backbone_kwargs):
        super().__init__()
        if img_size % 8:
            raise ValueError(f"img_size must be a multiple of 8, got {img_size}")
        self.num_classes, self.img_size, self.backbone_name = num_classes, img_size, backbone
        self.backbone = build_backbone(backbone, img_size, **backbone_kwargs)
        top_stride = self.backbone.strides[-1]
        if top_stride < STRIDE:
            raise ValueError(f"the backbone's last stride must be >= {STRIDE}, got {top_stride}")
        self.up = nn.Upsample(scale_factor=top_stride // STRIDE, mode="bilinear") if top_stride > STRIDE else nn.Identity()
        self.reduce = conv_bn_relu(self.backbone.channels[-1], width)
        # a lateral 1x1 conv brings in an earlier map at the output stride, where there is one
        strides = self.backbone.strides
        self.lateral_index = strides.index(STRIDE) if STRIDE in strides[:-1] else None
        self.lateral = (None if self.lateral_index is None
                        else nn.Conv2d(self.backbone.channels[self.lateral_index], width, 1))
        self.fuse = conv_bn_relu(width, width)
        self.heat = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1))
        self.reg = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 4, 1))
        nn.init.constant_(self.heat[2].bias, -2.19)

    def forward(self, x):
        feats = self.backbone(x)
        y = self.reduce(self.up(feats[-1]))
        if self.lateral is not None:
            y = y + self.lateral(feats[self.lateral_index])
        y = self.fuse(y)
        return self.heat(y), self.reg(y)

    def loss(self, x, targets):
        """Total loss (focal + 0.1 size + offset) of images x (B, 3, S, S) against a list of
        target dicts; returns (loss Tensor, dict of the three parts as 0-d arrays on the
        model's device: reading them, float(v), waits for a GPU, so the caller chooses when)."""
        heat, reg = self(x)
        t = encode_targets(targets, self.num_classes, heat.shape[-1])
        num, m = t["num"], Tensor(t["mask"], device=x.device)
        l_heat = focal_loss(heat, Tensor(t["heat"], device=x.device), num)
        l_size = ops.sum(ops.abs(reg[:, :2] - Tensor(t["size"], device=x.device)) * m) / num
        l_off = ops.sum(ops.abs(reg[:, 2:] - Tensor(t["offset"], device=x.device)) * m) / num
        total = l_heat + 0.1 * l_size + l_off
        return total, dict(heat=l_heat.data, size=l_size.data, offset=l_off.data)

    def predict(self, x, k=20, threshold=0.05, iou=0.6):
        """Detections for images x (B, 3, S, S): a list of B dicts (boxes, scores, labels)."""
        with no_grad():
            heat, reg = self(x)
        reg = reg.numpy()
        return decode(1 / (1 + np.exp(-heat.numpy())), reg[:, :2], reg[:, 2:], STRIDE, k, threshold, iou)


# ---------------------------------------------------------------- decoding and NMS
def peaks(heat):
    """Boolean (B, C, h, w): cells equal to the max of their 3x3 neighbourhood."""
    h, w = heat.shape[-2:]
    padded = np.pad(heat, [(0, 0)] * (heat.ndim - 2) + [(1, 1), (1, 1)], constant_values=-np.inf)
    pooled = np.max([padded[..., i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
    return heat == pooled


def decode(heat, size, offset, stride=STRIDE, k=20, threshold=0.05, iou=0.6):
    """Boxes from heatmap probabilities (B, C, h, w), sizes (B, 2, h, w) and offsets
    (B, 2, h, w) (numpy): the top k local peaks per image with score >= threshold,

        box = ((p + o) -/+ (w, h) / 2) * stride,

    then class-wise NMS at ``iou`` (None: none). Returns a list of B dicts: boxes float32
    (n, 4) xyxy in pixels, scores (n,), labels int64 (n,), best first."""
    B, C, h, w = heat.shape
    scored = np.where(peaks(heat), heat, 0).reshape(B, -1)
    k = min(k, scored.shape[1])
    top = np.argsort(-scored, axis=1, kind="stable")[:, :k]
    out = []
    for b in range(B):
        idx = top[b][scored[b, top[b]] >= threshold]
        cls, cell = np.divmod(idx, h * w)
        py, px = np.divmod(cell, w)
        cx, cy = px + offset[b, 0, py, px], py + offset[b, 1, py, px]
        bw, bh = size[b, 0, py, px], size[b, 1, py, px]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * stride
        scores = scored[b, idx]
        keep = np.arange(len(idx)) if iou is None else batched_nms(boxes, scores, cls, iou)
        out.append(dict(boxes=boxes[keep].astype(np.float32), scores=scores[keep].astype(np.float32),
                        labels=cls[keep].astype(np.int64)))
    return out


def nms(boxes, scores, iou=0.5):
    """Greedy non-maximum suppression: repeatedly keep the best remaining box and drop those
    overlapping it with IoU > iou. boxes (n, 4) xyxy, scores (n,) -> kept indices, best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    ious = metrics.box_iou(boxes, boxes)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        order = order[1:][ious[i, order[1:]] <= iou]
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, labels, iou=0.5):
    """NMS within each class (boxes of different classes never suppress each other):
    kept indices, by descending score."""
    labels = np.asarray(labels)
    keep = np.concatenate([np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou)]
                           for c in np.unique(labels)] + [np.zeros(0, np.int64)])
    return keep[np.argsort(-np.asarray(scores)[keep], kind="stable")]


# ---------------------------------------------------------------- evaluation
def match(detections, ground_truths, label, iou):
    """Greedy matching for one class over all images, COCO's way: detections by descending
    score each take the unmatched ground truth box of the same image with the highest IoU,
    if that IoU >= iou.

    Inputs: lists (one entry per image) of dicts: detections with boxes, scores, labels;
    ground truths with boxes, labels. Returns (scores (n,), is_tp bool (n,) in descending
    score order, number of ground truth boxes of the class)."""
    scores, tps, n_gt = [], [], 0
    for det, gt in zip(detections, ground_truths):
        d = np.asarray(det["labels"]) == label
        g = np.asarray(gt["boxes"]).reshape(-1, 4)[np.asarray(gt["labels"]) == label]
        n_gt += len(g)
        s = np.asarray(det["scores"])[d]
        order = np.argsort(-s, kind="stable")
        ious = metrics.box_iou(np.asarray(det["boxes"]).reshape(-1, 4)[d][order], g)
        taken = np.zeros(len(g), bool)
        for row in ious:
            cand = np.where(taken, -1.0, row)
            j = int(np.argmax(cand)) if len(g) else -1
            hit = j >= 0 and cand[j] >= iou
            if hit:
                taken[j] = True
            tps.append(hit)
        scores.append(s[order])
    scores = np.concatenate(scores) if scores else np.zeros(0)
    tps = np.array(tps, bool)
    order = np.argsort(-scores, kind="stable")
    return scores[order], tps[order], n_gt


def ap_from_matches(is_tp, n_gt):
    """101-point interpolated average precision (COCO) of detections sorted by score:

        precision_i = TP_i / i,  recall_i = TP_i / n_gt        (cumulative over the first i)
        p_interp(r) = max { precision_i : recall_i >= r }   (0 if recall never reaches r)
        AP = 1/101 sum_{r in 0, 0.01, ..., 1} p_interp(r)

    NaN when there is no ground truth (the class is then left out of the mean)."""
    if n_gt == 0:
        return float("nan")
    tp = np.cumsum(is_tp)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / n_gt
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")     # first i with recall_i >= r
    p = np.zeros(101)
    p[idx < len(recall)] = envelope[idx[idx < len(recall)]]
    return float(p.mean())


def average_precision(detections, ground_truths, num_classes, iou=0.5):
    """Mean over classes (with ground truth) of the 101-point AP at IoU threshold ``iou``;
    returns (mAP, per-class AP (num_classes,) with NaN for absent classes)."""
    per_class = np.array([ap_from_matches(*match(detections, ground_truths, c, iou)[1:])
                          for c in range(num_classes)])
    return (float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan")), per_class


def precision_recall(detections, ground_truths, num_classes, iou=0.5, score_threshold=0.3):
    """Precision TP / (TP + FP) and recall TP / (number of ground truth boxes) of the
    detections scoring >= score_threshold, matched per class at IoU >= iou."""
    kept = [{k: np.asarray(v)[np.asarray(d["scores"]) >= score_threshold] for k, v in d.items()} for d in detections]
    tp = fp = n_gt = 0
    for c in range(num_classes):
        _, hits, n = match(kept, ground_truths, c, iou)
        tp, fp, n_gt = tp + hits.sum(), fp + (~hits).sum(), n_gt + n
    return float(tp / max(tp + fp, 1)), float(tp / max(n_gt, 1))


def evaluate(detections, ground_truths, num_classes, score_threshold=0.3):
    """AP@0.5, AP@[.5:.95] (mean over IoU 0.50, 0.55, ..., 0.95), AP@0.75, and precision and
    recall at IoU 0.5, as a dict of floats (plus 'ap50_per_class', a list)."""
    ap50, per_class = average_precision(detections, ground_truths, num_classes, 0.5)
    aps = [ap50] + [average_precision(detections, ground_truths, num_classes, t)[0]
                    for t in np.linspace(0.55, 0.95, 9)]
    precision, recall = precision_recall(detections, ground_truths, num_classes, 0.5, score_threshold)
    return dict(ap50=ap50, ap=float(np.mean(aps)), ap75=aps[5], precision=precision, recall=recall,
                ap50_per_class=[float(a) for a in per_class])


def build_model(num_classes, backbone="resnet", img_size=64, **kwargs):
    """A ``CenterNet`` for ``num_classes`` classes on a 'resnet' or 'vit' backbone."""
    return CenterNet(num_classes, backbone, img_size, **kwargs)
