"""Solutions to the exercises of chapter 7 (chapters/07_outlook.ipynb, "Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np


def layerwise_prune(weights, sparsity):
    """Per tensor, zero the k = round(sparsity * size) entries of smallest |w|: their positions
    are the first k of argsort(|w|)."""
    out = {}
    for name, w in weights.items():
        k = int(round(sparsity * w.size))
        flat = w.ravel().copy()
        flat[np.argsort(np.abs(flat), kind="stable")[:k]] = 0
        out[name] = flat.reshape(w.shape)
    return out


def quantize_per_tensor(w):
    """Delta = max|w| / 127 (1 for an all-zero tensor), q = round(w / Delta) in [-127, 127]; rounding
    to the nearest step moves each weight by at most Delta / 2."""
    scale = float(np.abs(w).max()) / 127 or 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


# Exercise 3. Delta = 0.2 / 127 = 1.57e-3; an error uniform on [-Delta/2, Delta/2] has variance
# Delta^2 / 12, so an RMS error of Delta / sqrt(12) = 4.5e-4, 29% of the worst case Delta / 2.
int8_rms_error = 0.2 / 127 / np.sqrt(12)

# Exercise 4. 6 N D = 6 x 175e9 x 300e9 = 3.15e23 FLOPs (Brown et al. 2020 report 3.14e23).
gpt3_training_flops = 6 * 175e9 * 300e9
