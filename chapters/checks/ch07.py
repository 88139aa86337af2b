"""Self-checks of chapter 7's exercises (layer-wise pruning, int8 quantisation and its error,
training compute by the 6ND rule)."""
import numpy as np

from . import self_check


def _weights(seed=0):
    """A few float32 weight arrays of a small network: conv, conv, linear (no ties in |w|)."""
    rng = np.random.default_rng(seed)
    return {"conv1.weight": (rng.normal(0, 0.3, (8, 3, 3, 3))).astype(np.float32),
            "conv2.weight": (rng.normal(0, 0.05, (16, 8, 3, 3))).astype(np.float32),
            "fc.weight": (rng.normal(0, 0.1, (10, 16))).astype(np.float32)}


@self_check
def layerwise_prune(fn):
    """Exercise: each tensor loses its own round(s * n) smallest-magnitude entries."""
    for sparsity in (0.0, 0.3, 0.7):
        weights = _weights()
        saved = {k: v.copy() for k, v in weights.items()}
        out = fn(weights, sparsity)
        if out is None:
            return False, "your function returned None"
        if not isinstance(out, dict) or set(out) != set(weights):
            return False, f"return a dict with the same names {sorted(weights)}, got {type(out).__name__}"
        if any(not np.array_equal(weights[k], saved[k]) for k in weights):
            return False, "your function changed its input arrays; return new ones"
        for name, w in weights.items():
            p = np.asarray(out[name])
            if p.shape != w.shape:
                return False, f"{name}: shape {p.shape}, expected {w.shape}"
            zero, want = int((p == 0).sum()), int(round(sparsity * w.size))
            if zero != want:
                return False, f"{name} at sparsity {sparsity}: {zero} zeros of {w.size}, expected {want} (each layer its own count)"
            kept = p != 0
            if not np.array_equal(p[kept], w[kept]):
                return False, f"{name}: the weights you keep must keep their values"
            if want and kept.any() and np.abs(w[~kept]).max() > np.abs(w[kept]).min():
                return False, f"{name} at sparsity {sparsity}: you zeroed a weight larger in magnitude than one you kept"
    return True, ("each layer keeps its own largest weights; a small first layer (here 216 weights) "
                  "loses as large a share as the big ones, where one global threshold would spare or strip it")


@self_check
def quantize_per_tensor(fn):
    """Exercise: symmetric int8 quantisation with one scale per tensor."""
    rng = np.random.default_rng(3)
    plain = rng.normal(0, 0.05, (32, 16)).astype(np.float32)
    outlier = plain.copy()
    outlier[0, 0] = 1.0                                   # one weight 20 sigma out
    errors = []
    for w in (plain, outlier, -plain):
        answer = fn(w)
        if answer is None:
            return False, "your function returned None"
        if not isinstance(answer, tuple) or len(answer) != 2:
            return False, "return a pair (q, scale)"
        q, scale = np.asarray(answer[0]), float(answer[1])
        if q.dtype != np.int8 or q.shape != w.shape:
            return False, f"q must be an int8 array of shape {w.shape}, got {q.dtype} {q.shape}"
        if np.abs(q.astype(int)).max() > 127:
            return False, "q must lie in [-127, 127] (symmetric: -128 is left out)"
        want = np.abs(w).max() / 127
        if not np.isclose(scale, want, rtol=1e-5):
            return False, f"scale {scale:.3g}, expected max|w| / 127 = {want:.3g}"
        err = np.abs(w - q.astype(np.float64) * scale).max()
        if err > scale / 2 * (1 + 1e-4):
            return False, f"largest error {err:.3g} exceeds Delta / 2 = {scale / 2:.3g}: round to the nearest step"
        errors.append(np.sqrt(np.mean((w - q.astype(np.float64) * scale) ** 2)))
    return True, (f"range, dtype and the Delta/2 bound hold; the RMS error is {errors[0]:.2g} without the outlier "
                  f"and {errors[1]:.2g} with it: one large weight coarsens the whole tensor's grid, "
                  "which is why the chapter gives each output channel its own scale")


@self_check
def int8_rms_error(value):
    """Exercise: the RMS rounding error of int8 quantisation with max |w| = 0.2."""
    value = float(value)
    delta = 0.2 / 127
    want = delta / np.sqrt(12)
    w = np.random.default_rng(0).normal(0, 0.05, 100_000)
    w = w / np.abs(w).max() * 0.2
    measured = np.sqrt(np.mean((w - np.round(w / delta) * delta) ** 2))
    ok = abs(value - want) <= 0.05 * want
    return ok, (f"you predict {value:.3g}; measured on 100,000 normal weights: {measured:.3g}" +
                (f" (Delta / sqrt(12) = {want:.3g}: the standard deviation of a uniform error on a step "
                 f"Delta = 0.2 / 127)" if ok else
                 "; the variance of a uniform distribution over [-Delta/2, Delta/2] is Delta^2 / 12"))


@self_check
def gpt3_training_flops(value):
    """Exercise: GPT-3's training compute by the 6ND rule."""
    value = float(value)
    want = 6 * 175e9 * 300e9
    ok = abs(value - want) <= 0.05 * want
    years = want / 30e9 / 3.156e7
    return ok, (f"{value:.3g} FLOPs" + (f": Brown et al. (2020, Table D.1) give 3.14e23. At 30 GFLOP/s (the order "
                                       f"of this library's CPU training speed) that is {years:,.0f} years" if ok else
                                       f", expected about {want:.2g}: 6 x parameters x tokens"))
