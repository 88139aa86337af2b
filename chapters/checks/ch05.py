"""Self-checks of chapter 5's exercises (macro F1, a warmup + cosine schedule, the floor of the
label-smoothed loss, inverted dropout, a whitening matrix)."""
import math

import numpy as np

import tinyvision as tv
from tinyvision import metrics

from . import as_array, self_check


def _confusions():
    """Two confusion matrices (rows truth, columns prediction) with the reference macro F1 of
    each: one with a class that is never predicted, one with a class that never occurs."""
    rng = np.random.default_rng(5)
    cases = []
    for k, never_predicted, never_true in ((6, 4, None), (5, None, 2)):
        targets = rng.integers(0, k, 300)
        preds = np.where(rng.random(300) < 0.6, targets, rng.integers(0, k, 300))
        if never_predicted is not None:
            preds[preds == never_predicted] = (never_predicted + 1) % k
        if never_true is not None:
            targets[targets == never_true] = (never_true + 1) % k
        cm = metrics.confusion_matrix(preds, targets, k)
        cases.append((cm, metrics.precision_recall_f1(preds, targets, k, average="macro")))
    return cases


@self_check
def macro_f1(fn):
    """Exercise: macro F1 (the mean over classes of the per-class F1) from a confusion matrix."""
    for cm, (p, r, f1) in _confusions():
        got = fn(cm.copy())
        if got is None:
            return False, "macro_f1(cm) returned None; return one number"
        got = float(got)
        if math.isnan(got):
            return False, "got NaN: a class never predicted (or never present) has 0/0; count it as 0"
        if abs(got - f1) > 1e-9:
            hint = ("that is the harmonic mean of macro precision and macro recall, a different number: "
                    "average the per-class F1 instead" if abs(got - 2 * p * r / (p + r)) < 1e-9 else
                    "that is the accuracy (micro F1): average the per-class F1 instead"
                    if abs(got - np.trace(cm) / cm.sum()) < 1e-9 else
                    "rows are the truth, columns the prediction: FP_c is column c minus the diagonal")
            return False, f"on a {cm.shape[0]}-class matrix you get {got:.4f}, expected {f1:.4f} ({hint})"
    return True, "equals metrics.precision_recall_f1(..., average='macro') on two matrices, 0/0 counted as 0"


def _reference_lr(base_lr, warmup_steps, total_steps):
    opt = tv.optim.SGD([tv.nn.Parameter(np.zeros(1, np.float32))], lr=base_lr)
    sched = tv.optim.LinearWarmup(tv.optim.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps),
                                  warmup_steps=warmup_steps)
    return [sched.lr_at(t)[0] for t in range(total_steps)]


@self_check
def warmup_cosine(fn):
    """Exercise: lr(t) of a linear warmup over W steps then a cosine to 0, as tinyvision's
    LinearWarmup(CosineAnnealingLR(opt, T_max=T - W), W) computes it."""
    for base, warmup, total in ((0.1, 5, 50), (1e-3, 1, 20), (0.4, 30, 400)):
        want = _reference_lr(base, warmup, total)
        for t, w in enumerate(want):
            got = fn(t, base, warmup, total)
            if got is None:
                return False, "warmup_cosine(step, base_lr, warmup_steps, total_steps) returned None; return the lr"
            if not math.isclose(float(got), w, rel_tol=1e-9, abs_tol=1e-12):
                phase = ("warmup: the ramp is base * (t + 1) / (W + 1)" if t < warmup else
                         "cosine: base * (1 + cos(pi (t - W) / (T - W))) / 2")
                return False, (f"base {base}, W {warmup}, T {total}: at step {t} you give {float(got):.6g}, "
                               f"tinyvision {w:.6g} ({phase})")
    return True, "matches LinearWarmup(CosineAnnealingLR(...)).lr_at at every step of three schedules"


@self_check
def label_smoothing_floor(floor, gap, k=10, eps=0.1):
    """Exercise: the smallest value of the label-smoothed cross-entropy (K = 10, eps = 0.1), and
    the logit gap z_y - z_other at which the loss takes it."""
    floor, gap = float(floor), float(gap)
    if floor <= 0:
        return False, (f"a floor of {floor}: with smoothing the target puts eps/K on every wrong class, so a "
                       "one-hot prediction costs -(eps/K) log 0 = infinity, not 0; where is the minimum?")
    logits = tv.tensor(np.array([[gap] + [0.0] * (k - 1)]), dtype=np.float64, requires_grad=True)
    loss = tv.nn.functional.cross_entropy(logits, tv.tensor(np.array([0])), label_smoothing=eps)
    loss.backward()
    value, slope = float(loss.item()), float(logits.grad.data[0, 0])
    q_true, q_other = 1 - eps + eps / k, eps / k
    want = -(q_true * math.log(q_true) + (k - 1) * q_other * math.log(q_other))
    if abs(slope) > 1e-6:
        return False, (f"at a logit gap of {gap:.3f} the loss still {'falls' if slope < 0 else 'rises'} as the gap "
                       f"grows (dL/dz_y = {slope:+.4f}): at the minimum softmax(z) equals the smoothed target q")
    if abs(floor - want) > 1e-3:
        return False, (f"the loss at your gap is {value:.4f}, but your floor says {floor:.4f}: evaluate "
                       "-sum_k q_k log q_k")
    return True, (f"the smoothed loss cannot go below {want:.4f} nats, reached at a logit gap of "
                  f"ln({q_true:g}/{q_other:g}) = {math.log(q_true / q_other):.3f}")


@self_check
def inverted_dropout(fn):
    """Exercise: inverted dropout in training: y = x * m / (1 - p), m_i ~ Bernoulli(1 - p)."""
    x = np.ones((200, 500))
    for p in (0.0, 0.3, 0.5):
        y = fn(x.copy(), p, np.random.default_rng(0))
        if y is None:
            return False, "inverted_dropout(x, p, rng) returned None; return an array shaped like x"
        y = np.asarray(y, dtype=np.float64)
        if y.shape != x.shape:
            return False, f"the output has shape {y.shape}, expected {x.shape}"
        dropped = float(np.mean(y == 0))
        kept = y[y != 0]
        if abs(dropped - p) > 0.01:
            return False, f"with p = {p} you zero {dropped:.1%} of the elements, expected about {p:.0%}"
        if kept.size and not np.allclose(kept, 1 / (1 - p)):
            return False, (f"with p = {p} the kept elements of an all-ones input are {np.unique(kept)[:3]}, "
                           f"expected 1 / (1 - p) = {1 / (1 - p):.4f}, so that E[y] = x")
        again = np.asarray(fn(x.copy(), p, np.random.default_rng(0)))
        if not np.array_equal(again, y):
            return False, "two calls with the same seeded rng gave different masks: draw the mask from rng"
    return True, "drops a fraction p, scales the rest by 1/(1 - p) (mean kept at x), draws its mask from rng"


def _patch_covariance():
    """Smooth, colour-correlated random images (N, 3, 10, 10), the covariance of their 2x2
    patches (as init_whitening computes it) and a whitening conv set from them by init_whitening."""
    from tinyvision.models.speedrun import init_whitening, patches
    rng = np.random.default_rng(31)
    x = rng.normal(size=(200, 3, 10, 10)).cumsum(axis=2).cumsum(axis=3) / 10       # neighbours correlated
    x = np.einsum("ij,njhw->nihw", np.array([[1.0, 0.6, 0.3], [0.5, 1.0, 0.4], [0.2, 0.5, 1.0]]), x)
    p = patches(x, 2, 2)
    cov = p.T @ p / len(p) - np.outer(p.mean(0), p.mean(0))
    conv = tv.nn.Conv2d(3, 24, 2, bias=True)
    init_whitening(conv, x.astype(np.float32))
    return cov, conv.weight.data[:12].reshape(12, 12).astype(np.float64)


@self_check
def whitening_matrix(fn):
    """Exercise: W = (Lambda + eps I)^(-1/2) V^T from a covariance, rows in descending order of
    eigenvalue; W Sigma W^T = diag(lambda / (lambda + eps)); init_whitening's filters up to sign."""
    cov, reference = _patch_covariance()
    lam = np.linalg.eigvalsh(cov)[::-1]
    W, why = as_array(fn(cov.copy(), 0.0), cov.shape, "whitening_matrix(cov, 0.0)")
    if W is None:
        return False, why
    M = W @ cov @ W.T
    if not np.allclose(M, np.eye(len(cov)), atol=1e-6):
        if np.allclose(M, np.diag(1 / lam), rtol=1e-4) or np.allclose(M, np.diag(1 / lam[::-1]), rtol=1e-4):
            hint = "it is diag(1 / lambda): divide by the square root of the eigenvalues, not by the eigenvalues"
        elif np.allclose(W.T @ cov @ W, np.eye(len(cov)), atol=1e-6):
            hint = "W^T Sigma W is: np.linalg.eigh returns the eigenvectors as the COLUMNS of V; the filters are the rows of V^T"
        else:
            hint = f"its diagonal starts {np.round(np.diag(M)[:3], 4).tolist()}"
        return False, f"with eps = 0, W Sigma W^T should be the identity, and is not ({hint})"
    rayleigh = np.einsum("ij,jk,ik->i", W, cov, W) / np.einsum("ij,ij->i", W, W)
    residual = np.linalg.norm(W @ cov - rayleigh[:, None] * W, axis=1) / np.linalg.norm(W @ cov, axis=1)
    if residual.max() > 1e-6:
        return False, ("W whitens, but its rows are not eigenvectors of Sigma (that is another whitening, e.g. ZCA's "
                       "V Lambda^(-1/2) V^T): the rows must be the eigenvectors, divided by sqrt(lambda)")
    if np.any(np.diff(rayleigh) > 1e-9 * rayleigh.max()):
        return False, ("the rows are in ascending order of eigenvalue (np.linalg.eigh's order); reverse them so that "
                       "the first filter has the largest eigenvalue")
    W_eps, why = as_array(fn(cov.copy(), 1e-2), cov.shape, "whitening_matrix(cov, 1e-2)")
    if W_eps is None:
        return False, why
    if not np.allclose(W_eps @ cov @ W_eps.T, np.diag(lam / (lam + 1e-2)), atol=1e-6):
        return False, ("with eps = 0.01, W Sigma W^T should be diag(lambda / (lambda + eps)): add eps to every "
                       "eigenvalue before the square root")
    W_ref, _ = as_array(fn(cov.copy(), 5e-4), cov.shape, "whitening_matrix(cov, 5e-4)")
    cosines = np.abs(np.einsum("ij,ij->i", W_ref, reference)) / (np.linalg.norm(W_ref, axis=1) * np.linalg.norm(reference, axis=1))
    norms = np.linalg.norm(W_ref, axis=1) / np.linalg.norm(reference, axis=1)
    if not (np.allclose(cosines, 1, atol=1e-4) and np.allclose(norms, 1, rtol=1e-3)):
        return False, f"your filters differ from init_whitening's (eps 5e-4): |cos| per row {np.round(cosines, 3).tolist()}"
    return True, (f"W Sigma W^T = I (eps 0) and diag(lambda / (lambda + eps)) (eps 0.01) on a 12 x 12 patch covariance "
                  f"with condition number {lam[0] / lam[-1]:,.0f}; the rows equal init_whitening's filters up to sign")
