"""Solutions to the exercises of chapter 5 (chapters/05_training_evaluation_optimization.ipynb,
"Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import math

import numpy as np


def macro_f1(cm):
    """Per class c: TP = C[c, c], FP = column c minus TP (called c, but not c), FN = row c minus
    TP (a c that was missed); P = TP / (TP + FP), R = TP / (TP + FN), F1 = 2PR / (P + R), each
    0/0 := 0. Macro F1 is the plain mean of the K per-class F1 (every class weighs the same,
    however rare); the pooled counts would give the accuracy instead (micro F1)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp, fn = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return float(ratio(2 * precision * recall, precision + recall).mean())


def warmup_cosine(step, base_lr, warmup_steps, total_steps):
    """A linear ramp base * (t + 1) / (W + 1) for t < W (no step at lr 0; the line ends where the
    cosine starts), then half a cosine from base to 0 over the remaining T - W steps."""
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    return base_lr * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2


# Exercise 3. With smoothing the target is q = (1 - eps) onehot(y) + eps / K: 0.91 on the true
# class and 0.01 on each of the 9 others. A "perfect" one-hot prediction now costs infinity
# (0.01 * -log 0 on every wrong class); the loss -sum_k q_k log p_k is smallest at p = q (Gibbs'
# inequality), where it equals the entropy of q. softmax gives p = q when z_y - z_k = ln(q_y / q_k).
_q_true, _q_other = 1 - 0.1 + 0.1 / 10, 0.1 / 10
smoothed_floor = -(_q_true * math.log(_q_true) + 9 * _q_other * math.log(_q_other))   # 0.500 nats
best_gap = math.log(_q_true / _q_other)                                                # ln 91 = 4.51


def inverted_dropout(x, p, rng):
    """Keep each element with probability 1 - p and divide the kept ones by 1 - p: then
    E[y] = x, so evaluation (no dropout, y = x) sees activations of the same scale."""
    if p == 0:
        return x
    mask = rng.random(x.shape) >= p
    return x * mask / (1 - p)


def whitening_matrix(cov, eps=0.0):
    """Sigma = V Lambda V^T (np.linalg.eigh: ascending eigenvalues, eigenvectors as columns), so
    reverse both and take W = (Lambda + eps I)^(-1/2) V^T, one eigenvector per row. Then
    W Sigma W^T = (Lambda + eps)^(-1/2) Lambda (Lambda + eps)^(-1/2) = diag(lambda / (lambda + eps)),
    the identity for eps = 0: every direction of patch space with unit variance, uncorrelated."""
    lam, V = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    lam, V = lam[::-1], V[:, ::-1]
    return V.T / np.sqrt(lam + eps)[:, None]
