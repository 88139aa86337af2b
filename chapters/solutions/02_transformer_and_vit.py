"""Solutions to the exercises of chapter 2 (chapters/02_transformer_and_vit.ipynb, "Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import numpy as np

# Exercise 1. qkv (B, N, 3D) is reshaped to (B, N, 3, h, d) and permuted to (3, B, h, N, d): each
# head's queries are (N, d) with d = D / h = 64. The weights pair every query with every key, per
# head: (B, h, N, N). The heads are concatenated back to D features and projected: (B, N, D).
q_shape = (2, 3, 65, 64)
weights_shape = (2, 3, 65, 65)
output_shape = (2, 65, 192)


def patchify(images, P):
    """Split H and W into (H/P, P) and (W/P, P), bring the grid axes first (row-major over the
    grid), keep (C, P, P) inside each patch, and flatten."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P).transpose(0, 2, 4, 1, 3, 5)   # (B, H/P, W/P, C, P, P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)


def layer_norm_backward(x, gamma, grad, eps=1e-5):
    """With g' = grad * gamma = dL/dxhat and xhat = (x - mu) / sigma:
    dL/dx = (g' - mean(g') - xhat * mean(g' * xhat)) / sigma, the means over the D features: the
    second term comes from mu, the third from sigma (d sigma / dx_j = xhat_j / (D sigma))."""
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) / sigma
    g = grad * gamma
    return (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / sigma


def sincos(num_positions, dim):
    """Angles p / 10000^(2i/dim) for i = 0 .. dim/2 - 1; sines in the even channels, cosines in the odd."""
    angles = np.arange(num_positions)[:, None] / 10000.0 ** (np.arange(0, dim, 2) / dim)
    out = np.empty((num_positions, dim))
    out[:, 0::2], out[:, 1::2] = np.sin(angles), np.cos(angles)
    return out
