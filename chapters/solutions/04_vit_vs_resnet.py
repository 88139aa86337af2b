"""Solutions to the exercises of chapter 4 (chapters/04_vit_vs_resnet.ipynb, "Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import math


def _tokens(img_size, patch_size):
    """Patches N = (s/p)^2 and tokens T = N + 1 (the class token)."""
    n = (img_size // patch_size) ** 2
    return n, n + 1


def vit_params(img_size, patch_size, embed_dim, depth, mlp_ratio, num_classes):
    """Patch embedding 3p^2 D + D; class token D; position embedding T D; per block: two layer
    norms 4D, qkv 3D^2 + 3D, projection D^2 + D, MLP 2DH + H + D; final norm 2D; head DK + K."""
    d, h = embed_dim, int(embed_dim * mlp_ratio)
    _, t = _tokens(img_size, patch_size)
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (2 * d * h + h + d)
    return (3 * patch_size ** 2 * d + d) + d + t * d + depth * block + 2 * d + (d * num_classes + num_classes)


def vit_macs(img_size, patch_size, embed_dim, depth, mlp_ratio, num_classes):
    """Patch embedding N 3p^2 D; per block T (3D^2 + D^2 + 2DH) in the weights plus 2 T^2 D in
    attention's two products; the head D K, on the class token only."""
    d, h = embed_dim, int(embed_dim * mlp_ratio)
    n, t = _tokens(img_size, patch_size)
    return n * 3 * patch_size ** 2 * d + depth * (t * (4 * d * d + 2 * d * h) + 2 * t * t * d) + d * num_classes


# Exercise 3. 2 T^2 D = T (4 D^2 + 2 D H) gives T = 2D + H = 1536 + 3072 = 4608 tokens, so 4607
# patches of 16x16: a side of 16 sqrt(4607) = 1086 pixels. At 224 pixels (197 tokens) attention's
# products are 197 / 4608 = 4% of the weights' cost; doubling the side quadruples T, so the
# weights cost 4x and attention 16x.
vit_b16_crossover_side = 16 * math.sqrt(2 * 768 + 3072 - 1)


def receptive_field(layers):
    """1 + sum_i (k_i - 1) prod_{j<i} s_j: layer i widens the window by k_i - 1 of its input
    pixels, each of which is prod_{j<i} s_j pixels apart in the image."""
    side, jump = 1, 1
    for kernel, stride in layers:
        side += (kernel - 1) * jump
        jump *= stride
    return side
