"""Self-checks of chapter 4's exercises (a ViT's size and cost by formula, attention's crossover,
receptive fields)."""
import numpy as np

import tinyvision as tv

from . import self_check

# (img_size, patch_size, embed_dim, depth, mlp_ratio, num_classes): vit_cifar_tiny, vit_cifar_small
# and two shapes no registered model has (a non-square token grid would need (H/p)(W/p) tokens)
VIT_CONFIGS = [(32, 4, 64, 2, 2.0, 10), (32, 4, 192, 6, 2.0, 10), (48, 8, 96, 3, 4.0, 100), (64, 16, 32, 1, 3.0, 7)]


def _vit_summaries():
    """tv.summary of each of VIT_CONFIGS: [(config, params, macs)]."""
    out = []
    for img, patch, dim, depth, ratio, classes in VIT_CONFIGS:
        model = tv.models.VisionTransformer(img_size=img, patch_size=patch, embed_dim=dim, depth=depth,
                                            num_heads=2, mlp_ratio=ratio, num_classes=classes)
        s = tv.summary(model, (1, 3, img, img), verbose=False)
        out.append(((img, patch, dim, depth, ratio, classes), s.total_params, s.total_macs))
    return out


def _against_summary(fn, column, hint):
    for config, *reference in _vit_summaries():
        want, got = reference[column], fn(*config)
        if got is None:
            return False, f"your function returned None for {config}"
        if int(got) != want:
            return False, (f"for (img_size, patch, D, depth, mlp_ratio, classes) = {config} you count "
                           f"{int(got):,d}, tv.summary {want:,d} (off by {int(got) - want:+,d}); {hint}")
    return True, f"your formula gives tv.summary's count on all {len(VIT_CONFIGS)} configurations"


@self_check
def vit_params(fn):
    """Exercise: a VisionTransformer's parameter count as a formula."""
    return _against_summary(fn, 0, "did you count the class token, T = (s/p)^2 + 1 position vectors, "
                                   "every bias and both weights of each layer norm?")


@self_check
def vit_macs(fn):
    """Exercise: a VisionTransformer's multiply-adds for one image as a formula."""
    return _against_summary(fn, 1, "patch embedding N 3p^2 D; per block T(3D^2 + D^2 + 2DH) + 2T^2 D with "
                                   "T = N + 1 tokens; the head D K on the class token alone")


@self_check
def vit_b16_crossover_side(side):
    """Exercise: the image side at which ViT-B/16's attention products cost as much as its weights."""
    side = float(side)
    tokens = 2 * 768 + 3072                             # 2 T^2 D = T (4 D^2 + 2 D H)  ->  T = 2D + H
    want = 16 * np.sqrt(tokens - 1)
    ok = abs(side - want) <= 0.02 * want
    at224 = (224 // 16) ** 2 + 1
    return ok, (f"{side:.0f} px" + (f": attention equals the weights at T = 2D + H = {tokens} tokens, "
                                    f"{want:.0f} px; at 224 px (T = {at224}) attention is {at224 / tokens:.1%} "
                                    "of the weights' cost, and doubling the side multiplies the weights' cost "
                                    "by 4 and attention's by 16" if ok else
                                    f" is not it; set 2T^2 D = T(4D^2 + 2DH), solve for T, then T - 1 = (s/16)^2"))


def _numerical_receptive_field(layers, size=64):
    """The side of the input window that influences the centre output pixel of a stack of
    convolutions with all-ones weights and 'same'-style padding k // 2: found by backpropagation."""
    x = tv.tensor(np.zeros((1, 1, size, size)), dtype=np.float64, requires_grad=True)
    y = x
    for k, s in layers:
        y = tv.nn.functional.conv2d(y, tv.tensor(np.ones((1, 1, k, k))), stride=s, padding=k // 2)
    centre = y.shape[-1] // 2
    y[0, 0, centre, centre].backward()
    rows = np.flatnonzero(np.abs(x.grad.numpy())[0, 0].sum(axis=1))
    return int(rows[-1] - rows[0] + 1)


RF_CASES = [[(3, 1)] * 3, [(3, 1), (3, 2), (3, 1)], [(7, 2), (3, 2), (3, 1), (3, 1)], [(4, 4)], [(5, 1), (3, 2), (3, 2), (3, 1)]]


@self_check
def receptive_field(fn):
    """Exercise: the receptive field of a stack of convolutions."""
    for layers in RF_CASES:
        want, got = _numerical_receptive_field(layers), fn(layers)
        if got is None:
            return False, f"your function returned None for {layers}"
        if int(got) != want:
            return False, (f"for {layers} you give {int(got)}, backpropagation finds a window of {want} pixels "
                           "(each layer adds (k - 1) times the product of the strides before it)")
    resnet20 = [(3, 1)] * 7 + [(3, 2)] + [(3, 1)] * 5 + [(3, 2)] + [(3, 1)] * 5
    stages = ", ".join(str(int(fn(resnet20[:end]))) for end in (7, 13, 19))
    return True, (f"agrees with backpropagation on {len(RF_CASES)} stacks; ResNet-20's receptive field after its "
                  f"three stages: {stages} pixels (the image is 32), while a ViT mixes all patches in its first block")
