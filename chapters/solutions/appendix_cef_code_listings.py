"""Solutions to the exercises of appendices C/E/F (chapters/appendix_cef_code_listings.ipynb,
"Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np

import tinyvision as tv

# Exercise 1. Clamping g = (0.5, 2, -4) into [-1, 1] gives c = (0.5, 1, -1). g . c = 0.25 + 2 + 4
# = 6.25, |g| = sqrt(20.25) = 4.5, |c| = sqrt(2.25) = 1.5: cos = 6.25 / 6.75 = 0.926 (22 degrees).
# Norm clipping multiplies g by one positive number: the cosine stays 1.
value_clip_cosine = 6.25 / (4.5 * 1.5)


def clip_grad_norm(grads, max_norm):
    """One norm over all arrays, |g| = sqrt(sum_p |g_p|^2); every array times min(1, max_norm / |g|)."""
    total = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads]


# Exercise 3. The block class, not a model constructor, and the stage depths of ResNet-50.
# 25,557,032 parameters: 2.19x ResNet-18's 11,689,512 (more than twice: three convolutions per
# block, and the stages' outputs are 4x as wide).
resnet50_model = tv.models.ResNet(tv.models.Bottleneck, (3, 4, 6, 3), num_classes=1000)


def running_stats(batches, momentum=0.1):
    """Per channel: mean over (N, H, W); the variance unbiased, n = N H W values, divided by n - 1."""
    mean, var = 0.0, 1.0
    for b in batches:
        b = np.asarray(b, dtype=np.float64)
        mean = (1 - momentum) * mean + momentum * b.mean(axis=(0, 2, 3))
        var = (1 - momentum) * var + momentum * b.var(axis=(0, 2, 3), ddof=1)
    return mean, var
