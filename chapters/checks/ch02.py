"""Self-checks of chapter 2's exercises (attention shapes, patches, layer norm's backward pass,
the sine-cosine position code)."""
import numpy as np

import tinyvision as tv
from tinyvision import ops

from . import as_array, gradcheck_backward, self_check


@self_check
def attention_shapes(q_shape, weights_shape, output_shape):
    """Exercise: the shapes of the queries, the attention weights and the output of
    MultiheadSelfAttention(192, num_heads=3) on (2, 65, 192) tokens."""
    mha = tv.nn.MultiheadSelfAttention(192, num_heads=3)
    x = tv.tensor(np.random.default_rng(0).normal(size=(2, 65, 192)).astype(np.float32))
    with tv.no_grad():
        qkv = ops.permute(ops.reshape(mha.qkv(x), 2, 65, 3, 3, 64), 2, 0, 3, 1, 4)   # as the module does
        out, weights = mha(x, return_attention=True)
    wrong = [f"{name} is {tuple(given)}, expected {tuple(true.shape)}"
             for name, given, true in (("q_shape", q_shape, qkv[0]), ("weights_shape", weights_shape, weights),
                                       ("output_shape", output_shape, out))
             if tuple(given) != tuple(true.shape)]
    if wrong:
        return False, "; ".join(wrong) + " (heads split D = 192 into 3 x 64; weights pair every token with every token)"
    return True, f"queries {tuple(qkv[0].shape)}, weights {tuple(weights.shape)}, output {tuple(out.shape)}"


@self_check
def patchify(fn):
    """Exercise: images (B, C, H, W) -> patches (B, N, C P P) that PatchEmbed's weight multiplies."""
    rng = np.random.default_rng(0)
    for img, P in ((32, 4), (16, 8)):
        embed = tv.models.vit.PatchEmbed(img, P, 3, 8)
        x = rng.normal(size=(2, 3, img, img)).astype(np.float32)
        n = (img // P) ** 2
        patches, problem = as_array(fn(x.copy(), P), (2, n, 3 * P * P), f"patchify(x of {x.shape}, {P})")
        if problem:
            return False, problem
        W, b = embed.proj.weight.numpy(), embed.proj.bias.numpy()
        with tv.no_grad():
            expected = embed(tv.tensor(x)).numpy()
        if not np.allclose(patches @ W.reshape(8, -1).T + b, expected, atol=1e-4):
            same_values = np.allclose(np.sort(patches, axis=None), np.sort(x, axis=None))
            return False, (f"patches @ E differs from PatchEmbed for {img}x{img} images, P = {P}: " +
                           ("the values are right but in the wrong order (patches row-major over the grid; "
                            "inside a patch: channel, then row, then column)" if same_values
                            else "the patches do not hold the image's values"))
    return True, "patchify(x, P) @ E equals PatchEmbed for P = 4 and P = 8"


@self_check
def layer_norm_backward(fn):
    """Exercise: layer norm's dL/dx over the last axis, checked by tv.gradcheck."""
    rng = np.random.default_rng(3)
    gamma, beta, eps = rng.normal(size=6), rng.normal(size=6), 1e-5

    def forward(z):
        return gamma * (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + eps) + beta
    x = rng.normal(1.0, 2.0, size=(4, 6))
    _, problem = as_array(fn(x, gamma, np.ones_like(x), eps), x.shape, "layer_norm_backward(x, gamma, grad, eps)")
    if problem:
        return False, problem
    return gradcheck_backward(forward, lambda z, out, grad: fn(z, gamma, grad, eps), x,
                      "x enters through x - mean and through the variance: dx has three terms")


@self_check
def sincos(fn):
    """Exercise: the sine-cosine position code, compared with tv.nn.sincos_1d."""
    codes, problem = as_array(fn(50, 16), (50, 16), "sincos(50, 16)")
    if problem:
        return False, problem
    expected = tv.nn.sincos_1d(50, 16).astype(np.float64)
    if not np.allclose(codes, expected, atol=1e-5):
        halves = np.concatenate([expected[:, 0::2], expected[:, 1::2]], axis=1)
        hint = ("you put all sines first, then all cosines: interleave them (sin in channel 2i, cos in 2i + 1)"
                if np.allclose(codes, halves, atol=1e-5) else
                f"position 1 should start {np.round(expected[1, :4], 4).tolist()}, yours {np.round(codes[1, :4], 4).tolist()}")
        return False, "codes differ from tv.nn.sincos_1d: " + hint
    dots = codes @ codes.T
    shift = max(abs(dots[i, i + 5] - dots[0, 5]) for i in range(40))
    return True, f"equals tv.nn.sincos_1d; <PE(p), PE(p + 5)> is the same for every p (spread {shift:.1e})"
