"""Self-checks of chapter 1's exercises (mean-filter noise, filtering by hand, the ratio test, a
ViT's parameter count)."""
import numpy as np

import tinyvision as tv

from . import as_array, self_check

F = tv.nn.functional


def _conv_same(image, kernel):
    """The reference: F.conv2d with zero padding k // 2 of a grey image by one kernel."""
    out = F.conv2d(tv.tensor(image[None, None].astype(np.float32)), tv.tensor(kernel[None, None].astype(np.float32)),
                   padding=kernel.shape[0] // 2)
    return out.numpy()[0, 0].astype(np.float64)


@self_check
def mean3_noise_std(predicted):
    """Exercise: the standard deviation of i.i.d. noise (sigma 0.1) after a 3x3 mean filter."""
    predicted = float(predicted)
    noise = np.random.default_rng(0).normal(0, 0.1, (256, 256)).astype(np.float32)
    box = np.full((1, 1, 3, 3), 1 / 9, np.float32)
    measured = float(F.conv2d(tv.tensor(noise[None, None]), tv.tensor(box)).numpy().std())
    ok = abs(predicted - measured) <= 0.05 * measured
    return ok, f"you predicted {predicted:.4f}, the filter gives {measured:.4f}" + (
        "" if ok else " (the mean of n independent values with std sigma has std sigma / sqrt(n))")


@self_check
def filter2d_numpy(fn):
    """Exercise: 'same'-size cross-correlation in NumPy, compared with F.conv2d."""
    rng = np.random.default_rng(3)
    image = rng.normal(size=(13, 17))
    for k in (3, 5):
        kernel = rng.normal(size=(k, k))
        out, problem = as_array(fn(image.copy(), kernel.copy()), image.shape, f"filter2d_numpy(image, {k}x{k} kernel)")
        if problem:
            return False, problem
        reference = _conv_same(image, kernel)
        if not np.allclose(out, reference, atol=1e-4):
            if np.allclose(out, _conv_same(image, kernel[::-1, ::-1]), atol=1e-4):
                return False, (f"with a {k}x{k} kernel you computed a true convolution (kernel flipped); "
                               "conv2d in deep learning is cross-correlation: do not flip")
            worst = np.unravel_index(np.abs(out - reference).argmax(), out.shape)
            return False, (f"with a {k}x{k} kernel your output differs from F.conv2d by up to "
                           f"{np.abs(out - reference).max():.3g}, first at pixel {worst} (check the padding and the shift)")
    return True, "matches F.conv2d for 3x3 and 5x5 non-symmetric kernels on a 13x17 image"


def _ratio_reference(d1, d2, ratio):
    dist = np.linalg.norm(d1[:, None, :] - d2[None, :, :], axis=2)
    order = np.argsort(dist, axis=1)
    rows = np.arange(len(d1))
    keep = dist[rows, order[:, 0]] < ratio * dist[rows, order[:, 1]]
    return np.stack([rows[keep], order[keep, 0]], axis=1)


@self_check
def ratio_test(fn):
    """Exercise: Lowe's ratio test, on descriptors with planted matches, near-duplicates and distractors."""
    rng = np.random.default_rng(4)
    d1 = rng.normal(size=(20, 16))
    copies = d1[:12] + rng.normal(0, 0.05, (12, 16))                # true matches of 0..11
    doubles = copies[9:12] + rng.normal(0, 0.01, (3, 16))           # 9..11 get a second, as close
    d2 = np.concatenate([copies, doubles, rng.normal(size=(10, 16))])[rng.permutation(25)]
    for ratio in (0.8, 0.3):
        got = fn(d1.copy(), d2.copy(), ratio)
        if got is None:
            return False, "ratio_test returned None; return an integer array of pairs (i, j), shape (K, 2)"
        got = np.asarray(got).reshape(-1, 2)
        expected = _ratio_reference(d1, d2, ratio)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            missing = {tuple(p) for p in expected.tolist()} - {tuple(p) for p in got.tolist()}
            extra = {tuple(p) for p in got.tolist()} - {tuple(p) for p in expected.tolist()}
            return False, (f"with ratio={ratio}: {len(got)} pairs, expected {len(expected)}"
                           + (f"; missing e.g. {sorted(missing)[0]}" if missing else "")
                           + (f"; not expected e.g. {sorted(extra)[0]}" if extra else "")
                           + " (Euclidean distances, nearest vs second nearest, pairs in increasing i)")
    return True, (f"same pairs as the reference at ratio 0.8 ({len(_ratio_reference(d1, d2, 0.8))} pairs) "
                  f"and at ratio 0.3 ({len(_ratio_reference(d1, d2, 0.3))} pairs)")


@self_check
def vit_params(fn):
    """Exercise: a ViT's parameter count, against tinyvision's ViT-Ti/16 and ViT-S/16 and the paper's ViT-B/16."""
    cases = [("ViT-Ti/16 (tinyvision)", (16, 224, 192, 12, 1000), tv.models.vit_tiny_patch16_224()),
             ("ViT-Ti/16, 10 classes (tinyvision)", (16, 224, 192, 12, 10), tv.models.vit_tiny_patch16_224(num_classes=10)),
             ("ViT-S/16 (tinyvision)", (16, 224, 384, 12, 1000), tv.models.vit_small_patch16_224()),
             ("ViT-B/16 (86M in Dosovitskiy et al., Table 1)", (16, 224, 768, 12, 1000), 86_567_656)]
    for name, args, reference in cases:
        expected = reference if isinstance(reference, int) else sum(p.size for p in reference.parameters())
        got = fn(*args)
        if got is None:
            return False, "vit_params returned None; return an integer"
        if int(got) != expected:
            d = args[2]
            diff = int(got) - expected
            hint = f" = {diff / d:+g} x d: a term of size d counted {'too often' if diff > 0 else 'too rarely'}" \
                if diff % d == 0 else ""
            return False, f"{name} {args}: you count {int(got):,}, it has {expected:,} (off by {diff:+,}{hint})"
    return True, "matches ViT-Ti/16 (1000 and 10 classes), ViT-S/16 and ViT-B/16 (86,567,656)"
