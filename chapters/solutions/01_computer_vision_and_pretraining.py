"""Solutions to the exercises of chapter 1 (chapters/01_computer_vision_and_pretraining.ipynb,
"Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np

# Exercise 1. The filter averages 9 independent values of variance sigma^2: the variance of the
# mean is sigma^2 / 9, so its standard deviation is sigma / 3 = 0.0333. (Neighbouring outputs share
# inputs, so the filtered noise is no longer independent from pixel to pixel; each pixel's spread
# is still sigma / 3.)
mean3_noise_std = 0.1 / 3


def filter2d_numpy(image, kernel):
    """y[i, j] = sum_uv k[u, v] x_pad[i + u, j + v]: one shifted slice of the padded image per tap."""
    k = kernel.shape[0]
    h, w = image.shape
    padded = np.pad(image, k // 2)
    out = np.zeros((h, w))
    for u in range(k):
        for v in range(k):
            out += kernel[u, v] * padded[u:u + h, v:v + w]
    return out


def ratio_test(d1, d2, ratio=0.8):
    """Distances from every d1 row to every d2 row; keep i -> nearest j when it beats the second
    nearest by the factor ``ratio``."""
    dist = np.linalg.norm(d1[:, None, :] - d2[None, :, :], axis=2)
    nearest, second = np.sort(dist, axis=1)[:, :2].T
    keep = np.flatnonzero(nearest < ratio * second)
    return np.stack([keep, dist[keep].argmin(axis=1)], axis=1)


def vit_params(patch, image, d, layers, classes):
    """Patch embedding 3 P^2 d + d, class token d, positions ((S/P)^2 + 1) d, L blocks of
    12 d^2 + 13 d (MLP width 4d), final layer norm 2d, head d K + K."""
    tokens = (image // patch) ** 2 + 1
    block = 4 * (d * d + d) + 2 * d * 4 * d + 4 * d + d + 4 * d
    return 3 * patch * patch * d + d + d + tokens * d + layers * block + 2 * d + d * classes + classes
