# %% [markdown]
# # Chapter 1 · Computer vision and pretrained models (计算机视觉与预训练模型概述)
#
# Before deep networks, vision systems were pipelines of hand-designed steps: filter the image,
# find edges and corners, describe and match them, match templates. This notebook builds each of
# those steps with tinyvision's convolution (and NumPy where no learning is involved), then tests
# in a small experiment what features *learned* on one task and reused on another (pretraining)
# change, and ends with the language models (GPT, BERT) whose pretraining recipe the Vision
# Transformer borrowed: their objectives, their published sizes, and a tiny runnable version of
# masked and next-token prediction.
#
# **Run modes.** By default the chapter runs in under 10 minutes on a 2-core CPU (a smaller network
# and fewer epochs than the full experiment); it then also shows the full experiment's recorded
# results. `TINYVISION_FULL=1` runs the full experiment (a deeper network and about twice the
# epochs) and records its results; `TINYVISION_QUICK=1` is the smoke test of continuous
# integration, whose numbers measure nothing (each printed line says so).

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
F = tv.nn.functional
tv.manual_seed(0)
np.random.seed(0)
# %matplotlib inline
print(f"{C.MODE} mode | tinyvision {tv.__version__}")

# %% [markdown]
# **Data.** The helpers look for CIFAR-10 at `datasets/cache/cifar10-jpeg.tar.gz` (or
# `$TINYVISION_DATA`). When it is absent, as in continuous integration, they fall back to a small
# **synthetic** data set: ten classes of striped images whose stripe angle is the label, with random
# frequency, phase, tint, a blob and noise. It keeps every cell runnable, but numbers measured on
# it say nothing about CIFAR-10; the printed `data:` line always says which one was used.

# %% [markdown]
# ## 1.1 Computer-vision basics (计算机视觉基础)
#
# ### Pixels, channels and resolution
# A colour image is an array of shape (height, width, channels): every pixel holds one number per
# channel (red, green, blue), stored as an 8-bit integer 0-255. Networks take the channels-first
# layout (N, C, H, W) as float32, usually normalised per channel.

# %%
split = C.load_data(train_per_class=4, test_per_class=1)
C.describe(split)
img = split.train.data[0]
print("one image:", img.shape, img.dtype, "values", img.min(), "..", img.max())

fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
axes[0].imshow(img); axes[0].set_title(split.classes[split.train.targets[0]])
for ax, c, name in zip(axes[1:], range(3), ["red", "green", "blue"]):
    ax.imshow(img[:, :, c], cmap="gray", vmin=0, vmax=255); ax.set_title(f"{name} channel")
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
# Resolution is the number of pixels. Average pooling (a fixed 2x2 mean, `F.avg_pool2d`)
# halves it: each output pixel summarises four inputs, and fine detail disappears.

# %%
x = tv.tensor(img.transpose(2, 0, 1)[None] / 255.0)            # (1, 3, 32, 32) float32
views = [x]
for _ in range(2):
    views.append(F.avg_pool2d(views[-1], 2))
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, v in zip(axes, views):
    ax.imshow(v.numpy()[0].transpose(1, 2, 0)); ax.set_title(f"{v.shape[2]}x{v.shape[3]}"); ax.axis("off")
plt.show()

# %% [markdown]
# ### Filtering is convolution
# A linear filter replaces every pixel by a weighted sum of its neighbours,
# $y[i, j] = \sum_{u, v} k[u, v]\, x[i + u, j + v]$ (deep-learning "convolution" is this
# cross-correlation). The mean filter is the convolution whose weights are all $1/k^2$: it smooths
# noise away together with detail. We filter a grey test scene with `F.conv2d` and check one output
# pixel against the mean of its 3x3 neighbourhood.

# %%
scene = C.demo_scene()                                           # (96, 96) in [0, 1]
noisy = np.clip(scene + np.random.default_rng(1).normal(0, 0.1, scene.shape), 0, 1).astype(np.float32)

def filter2d(image, kernel):
    """'same'-size filtering of a grey image (H, W) by a square odd kernel (k, k), zero padding."""
    k = kernel.shape[0]
    out = F.conv2d(tv.tensor(image[None, None]), tv.tensor(kernel[None, None]), padding=k // 2)
    return out.numpy()[0, 0]

mean3 = np.full((3, 3), 1 / 9, np.float32)
mean7 = np.full((7, 7), 1 / 49, np.float32)
smooth3, smooth7 = filter2d(noisy, mean3), filter2d(noisy, mean7)
i, j = 40, 50
by_hand = noisy[i - 1:i + 2, j - 1:j + 2].mean()
C.say(f"pixel ({i}, {j}): neighbourhood mean {by_hand:.6f}, conv2d {smooth3[i, j]:.6f}, "
      f"difference {abs(by_hand - smooth3[i, j]):.1e}")

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, im, t in zip(axes, [noisy, smooth3, smooth7], ["noisy", "3x3 mean", "7x7 mean"]):
    ax.imshow(im, cmap="gray", vmin=0, vmax=1); ax.set_title(t); ax.axis("off")
plt.show()

# %% [markdown]
# ### Histogram equalisation and contrast enhancement
# A low-contrast image uses only a narrow band of grey levels. Two remedies:
#
# * **linear stretch**: map the 1st..99th percentile range onto [0, 1];
# * **histogram equalisation**: map each level $v$ through the cumulative histogram,
#   $T(v) = \frac{\mathrm{CDF}(v) - \mathrm{CDF}_{min}}{1 - \mathrm{CDF}_{min}}$, so the output levels are
#   spread (approximately) uniformly.
#
# Pure NumPy: no learning, no gradients. The cell measures how many of the 256 grey levels each
# version uses and the fraction of pixels below mid-grey (0.5 for a uniform histogram).

# %%
gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
dull = 0.35 + 0.25 * gray                                         # squeezed into [0.35, 0.6]
levels = np.round(dull * 255).astype(np.int64)

def equalise(levels):
    hist = np.bincount(levels.ravel(), minlength=256)
    cdf = np.cumsum(hist) / levels.size
    cdf_min = cdf[hist > 0][0]
    return ((cdf - cdf_min) / (1 - cdf_min)).clip(0, 1)[levels]

lo, hi = np.percentile(dull, [1, 99])
stretched = ((dull - lo) / (hi - lo)).clip(0, 1)
equalised = equalise(levels)
for name, im in [("low contrast", dull), ("linear stretch", stretched), ("equalised", equalised)]:
    C.say(f"{name:15s} grey range {im.min():.2f}..{im.max():.2f}, "
          f"{len(np.unique(np.round(im * 255)))} distinct levels, {np.mean(im < 0.5):.2f} of pixels below 0.5")

fig, axes = plt.subplots(2, 3, figsize=(10, 5))
for col, (im, title) in enumerate([(dull, "low contrast"), (stretched, "linear stretch"), (equalised, "equalised")]):
    axes[0, col].imshow(im, cmap="gray", vmin=0, vmax=1); axes[0, col].set_title(title); axes[0, col].axis("off")
    axes[1, col].hist(im.ravel(), bins=32, range=(0, 1)); axes[1, col].set_xlabel("grey level")
plt.tight_layout(); plt.show()

# %% [markdown]
# ### Edges: the Sobel operator
# Edges are large intensity gradients. Sobel kernels estimate $\partial I/\partial x$ and
# $\partial I/\partial y$ with a derivative across and a smoothing along; the gradient magnitude
# $\sqrt{G_x^2 + G_y^2}$ is the edge strength. Both kernels go through `conv2d` in one call (two output
# channels).

# %%
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)

def gradients(image):
    """Sobel estimates (Gx, Gy) of a grey image's derivatives along columns and rows, each (H, W)."""
    kernels = tv.tensor(np.stack([sobel_x, sobel_x.T])[:, None])          # (2, 1, 3, 3)
    return F.conv2d(tv.tensor(image[None, None]), kernels, padding=1).numpy()[0]

gx, gy = gradients(scene)
magnitude = np.hypot(gx, gy)

fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, im, t in zip(axes, [scene, gx, gy, magnitude], ["scene", "Gx", "Gy", "|G| (edges)"]):
    ax.imshow(im, cmap="gray"); ax.set_title(t); ax.axis("off")
plt.show()


# %% [markdown]
# ### Corners: the Harris detector
# At a corner the image changes in *every* direction. Harris summarises the gradients around a pixel
# in the structure tensor $M = \sum_w \begin{pmatrix} I_x^2 & I_x I_y \\ I_x I_y & I_y^2 \end{pmatrix}$
# (a Gaussian-weighted window $w$) and scores $R = \det M - k\,(\operatorname{tr} M)^2$, $k \approx 0.05$:
# $R$ is large and positive when both eigenvalues of $M$ are large (corner), negative on an edge (one
# large eigenvalue), small in flat regions. Corners are the local maxima of $R$ (non-maximum
# suppression with a 7x7 max pool) above 5% of its largest value.

# %%
def gaussian_kernel(size=5, sigma=1.0):
    r = np.arange(size) - size // 2
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)

def harris(image, k=0.05):
    """The Harris response R = det M - k (tr M)^2 of a grey image, (H, W)."""
    gx, gy = gradients(image)
    w = gaussian_kernel(5, 1.2)
    Sxx, Syy, Sxy = (filter2d(a.astype(np.float32), w) for a in (gx * gx, gy * gy, gx * gy))
    return Sxx * Syy - Sxy ** 2 - k * (Sxx + Syy) ** 2

def find_corners(R, border=3):
    """(row, col) of the local maxima of R (7x7) above 5% of its maximum, away from the border."""
    local_max = F.max_pool2d(tv.tensor(R[None, None]), 7, stride=1, padding=3).numpy()[0, 0]
    keep = (R == local_max) & (R > 0.05 * R.max())
    keep[:border], keep[-border:], keep[:, :border], keep[:, -border:] = False, False, False, False
    return np.argwhere(keep)

R = harris(scene)
corners = find_corners(R)
C.say(f"{len(corners)} corners found")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(R, cmap="RdBu_r", vmin=-abs(R).max(), vmax=abs(R).max()); axes[0].set_title("Harris response R")
axes[1].imshow(scene, cmap="gray"); axes[1].scatter(corners[:, 1], corners[:, 0], s=30, c="red", marker="x")
axes[1].set_title("corners")
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
# ### Feature matching
# The article's second traditional stage: *match* the features of one image with those of another
# (to stitch panoramas, track objects, recognise a known object). Each corner gets a **descriptor**,
# here the simplest one: the 11x11 patch around it, made zero-mean and unit-length, so that the dot
# product of two descriptors is their normalised cross-correlation (NCC, 1 for identical patches up
# to brightness and contrast). Corner $i$ of the first image and corner $j$ of the second match when
# each is the other's most similar (a *mutual nearest neighbour*).
#
# The second image is the scene rotated about its centre and shifted, with fresh noise, so we know
# where every corner must land: $p' = A p + b$. A match is correct when its corner lands within
# 2 pixels of the transformed position. SIFT and SURF, which the article names, add what this
# descriptor lacks: a scale per keypoint, an orientation (the descriptor is computed in a frame
# rotated to the dominant gradient direction) and histograms of gradient directions instead of raw
# pixels (Lowe, *Distinctive image features from scale-invariant keypoints*, IJCV 2004). The sweep
# over angles measures how far raw patches get without them.

# %%
def bilinear(image, rows, cols):
    """``image`` sampled at real-valued (rows, cols) by bilinear interpolation, edges repeated."""
    H, W = image.shape
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    pad = np.pad(image, 1, mode="edge")
    at = lambda r, c: pad[np.clip(r + 1, 0, H + 1), np.clip(c + 1, 0, W + 1)]
    return (at(r0, c0) * (1 - fr) * (1 - fc) + at(r0 + 1, c0) * fr * (1 - fc)
            + at(r0, c0 + 1) * (1 - fr) * fc + at(r0 + 1, c0 + 1) * fr * fc)

def rotate_shift(image, degrees, shift, noise_seed):
    """The image rotated by ``degrees`` about its centre, shifted by (rows, cols), with fresh noise;
    returns it and (A, b) with p' = A p + b for (row, col) points."""
    H, W = image.shape
    a = np.deg2rad(degrees)
    A = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    b = centre - A @ centre + np.asarray(shift, float)
    rows, cols = np.mgrid[0:H, 0:W].reshape(2, -1).astype(float)
    src = np.linalg.solve(A, np.stack([rows - b[0], cols - b[1]]))          # where each output pixel comes from
    out = bilinear(image, src[0], src[1]).reshape(H, W)
    out += np.random.default_rng(noise_seed).normal(0, 0.02, out.shape)
    return np.clip(out, 0, 1).astype(np.float32), A, b

def patch_descriptors(image, points, radius=5):
    """One row per point: the (2r+1)^2 patch around it, zero-mean and unit-length."""
    pad = np.pad(image, radius, mode="edge")
    d = np.stack([pad[y:y + 2 * radius + 1, x:x + 2 * radius + 1].ravel() for y, x in points])
    d = d - d.mean(axis=1, keepdims=True)
    return d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-8)

def mutual_matches(d1, d2):
    """Pairs (i, j): descriptor j of d2 is the most similar to i of d1 (largest NCC) and vice versa."""
    similarity = d1 @ d2.T
    best = similarity.argmax(axis=1)
    keep = similarity.argmax(axis=0)[best] == np.arange(len(d1))
    return np.stack([np.flatnonzero(keep), best[keep]], axis=1)

def match_images(image, degrees, shift=(6, -4)):
    """Match the corners of ``image`` and of its rotated, shifted copy; returns the copy, both
    corner sets, the matches and whether each is correct (within 2 px of the true position)."""
    moved, A, b = rotate_shift(image, degrees, shift, noise_seed=degrees + 1)
    p1, p2 = find_corners(harris(image)), find_corners(harris(moved))
    pairs = mutual_matches(patch_descriptors(image, p1), patch_descriptors(moved, p2))
    correct = np.linalg.norm(p1[pairs[:, 0]] @ A.T + b - p2[pairs[:, 1]], axis=1) <= 2
    return moved, p1, p2, pairs, correct

sweep = {}
for degrees in [0, 10, 20, 30, 45, 90]:
    moved, p1, p2, pairs, correct = match_images(scene, degrees)
    sweep[degrees] = (len(pairs), int(correct.sum()))
    C.say(f"rotated {degrees:2d} deg: {len(p1)} and {len(p2)} corners, {len(pairs)} mutual matches, "
          f"{correct.sum()} correct ({correct.mean():.0%})")

moved, p1, p2, pairs, correct = match_images(scene, 10)
both = np.concatenate([scene, moved], axis=1)
plt.figure(figsize=(9, 4.5))
plt.imshow(both, cmap="gray")
for (i, j), ok in zip(pairs, correct):
    plt.plot([p1[i, 1], p2[j, 1] + scene.shape[1]], [p1[i, 0], p2[j, 0]], "-o", ms=3, color="lime" if ok else "red")
plt.title(f"patch matches, scene vs rotated 10 deg + shifted: {correct.sum()} of {len(pairs)} correct (green)")
plt.axis("off"); plt.show()

# %%
reliable = [d for d, (n, ok) in sweep.items() if n >= 3 and ok >= 0.8 * n]
failed = [d for d, (n, ok) in sweep.items() if ok < 0.5 * max(n, 1)]
C.say(f"verdict: raw-patch matching is reliable (>= 3 matches, >= 80% correct) at rotations {reliable} deg"
      + (f"; below half correct at {failed} deg" if failed else "; it never fell below half correct in this sweep"))

# %% [markdown]
# Matching by mutual nearest neighbour accepts a pair even when a second candidate is almost as
# similar; the square's four corners, for instance, are rotated copies of one another, which is how
# a 90-degree rotation can pair every corner with the wrong one. Lowe's **ratio test** (exercise 3)
# keeps a match only when the best candidate is clearly better than the second best.
#
# ### Template matching: the traditional detector
# To find an object, slide a picture of it (the template $T$) over the image and score every position
# by the normalised cross-correlation
# $\mathrm{NCC}(i, j) = \frac{\sum (I - \bar I)(T - \bar T)}{\sqrt{\sum (I - \bar I)^2 \sum (T - \bar T)^2}}$
# (in [-1, 1], insensitive to brightness and contrast). The numerator is one convolution with the
# zero-mean template; the local means and energies are box filters, also convolutions.

# %%
template = scene[58:84, 57:83].copy()                              # the cross, with a margin
th, tw = template.shape
t0 = template - template.mean()

def ncc_map(image, t0):
    th, tw = t0.shape
    I = tv.tensor(image[None, None])
    corr = F.conv2d(I, tv.tensor(t0[None, None])).numpy()[0, 0]
    box = tv.tensor(np.ones((1, 1, th, tw), np.float32))
    s1 = F.conv2d(I, box).numpy()[0, 0]
    s2 = F.conv2d(I * I, box).numpy()[0, 0]
    local_energy = np.maximum(s2 - s1 ** 2 / t0.size, 1e-8)
    return corr / np.sqrt(local_energy * (t0 ** 2).sum())

score = ncc_map(scene, t0)
y, x = np.unravel_index(score.argmax(), score.shape)
C.say(f"best match at (row {y}, col {x}), NCC = {score.max():.3f} (the template was cut at row 58, col 57)")

# The weakness: a template matches one appearance. Enlarge the scene by 1.5x and match again.
big = np.kron(scene, np.ones((3, 3), np.float32))[::2, ::2]         # the scene zoomed 1.5x
score_big = ncc_map(big, t0)
C.say(f"same template on the 1.5x zoomed scene: best NCC = {score_big.max():.3f} "
      f"({score.max() - score_big.max():.3f} lower)")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
axes[0].imshow(template, cmap="gray"); axes[0].set_title("template")
axes[1].imshow(scene, cmap="gray"); axes[1].add_patch(plt.Rectangle((x, y), tw, th, fill=False, color="lime", lw=2))
axes[1].set_title(f"match, NCC {score.max():.2f}")
axes[2].imshow(score, cmap="magma"); axes[2].set_title("NCC map")
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
# Each step above was designed by hand for one kind of structure, and the measurements show where
# it stops: fewer of the patch matches are correct as the rotation grows (the verdict line names
# the angles where they fail), and a template scores lower on the same object at another scale.
# That is the article's first limitation of traditional vision, *hand-designed features struggle
# with complex structure*. A convolutional network has the same building block, `conv2d`, but
# learns its kernels from data, and stacks them so later layers combine edges into parts and
# objects.
#
# ## 1.2 Pretrained models (预训练模型概述)
#
# Pretraining means learning those kernels once, on a large (labelled or unlabelled) data set, and
# reusing them for new tasks. The article claims four advantages: less labelled data needed,
# better accuracy, less overfitting, faster training. A miniature test: pretrain a small ResNet on
# five classes of CIFAR-10 (the *source* task: airplane, automobile, bird, cat, deer), then train on
# the *other* five classes (dog, frog, horse, ship, truck) with only 50 labelled images each,
# starting either from the pretrained weights (every weight copied except the classifier, which is
# new) or from scratch, with the same steps, and repeat the target training with three seeds.
#
# By default the network is a ResNet-14 pretrained for 8 epochs (pretraining and the six target
# runs take most of the chapter's run time: each pretraining epoch prints its speed, the target
# training its seconds); the full experiment (`TINYVISION_FULL=1`) uses a ResNet-20, 15 epochs
# of pretraining and 30 of fine-tuning, and its recorded results are shown below the live run.

# %%
settings = C.by_mode(
    default=dict(depth=14, source_per_class=1000, few=50, test_per_class=100, pretrain_epochs=8,
                 target_epochs=15, seeds=[0, 1, 2]),
    quick=dict(depth=8, source_per_class=40, few=10, test_per_class=20, pretrain_epochs=2,
               target_epochs=3, seeds=[0, 1]),
    full=dict(depth=20, source_per_class=1000, few=50, test_per_class=200, pretrain_epochs=15,
              target_epochs=30, seeds=[0, 1, 2]))
split = C.load_data(train_per_class=settings["source_per_class"], test_per_class=settings["test_per_class"])
C.describe(split)
source, target = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
src = C.Split(C.select_classes(split.train, source), C.select_classes(split.test, source), split.source)
tgt = C.Split(C.select_classes(split.train, target, per_class=settings["few"]),
              C.select_classes(split.test, target), split.source)
C.say(f"source task: {len(src.train)} images; target task: {len(tgt.train)} labelled images, "
      f"{len(tgt.test)} test images")

tv.manual_seed(0)
pre = C.cifar_resnet(settings["depth"], num_classes=5)
print(f"pretraining a ResNet-{settings['depth']} ({C.params_count(pre):,} parameters) on the source classes")
pretrain_history = C.fit(pre, src, "resnet_sgd", epochs=settings["pretrain_epochs"], batch_size=128)

# %%
def train_target(start, seed):
    """Train a fresh network on the target task from ``start`` ('scratch' or 'pretrained')."""
    tv.manual_seed(seed + 1)
    model = C.cifar_resnet(settings["depth"], num_classes=5)
    if start == "pretrained":
        state = {k: v for k, v in pre.state_dict().items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)                 # keep the new head
    return C.fit(model, tgt, "resnet_sgd", epochs=settings["target_epochs"], batch_size=16, lr=0.05,
                 seed=seed, verbose=False)

KEYS = ("epoch", "train_loss", "train_acc", "test_acc")
runs = {start: {} for start in ["scratch", "pretrained"]}
started = time.perf_counter()
for seed in settings["seeds"]:
    for start in runs:
        hist = train_target(start, seed)
        runs[start][str(seed)] = [{k: round(row[k], 4) for k in KEYS} for row in hist]
        C.say(f"seed {seed}, {start:10s}: target test accuracy by epoch "
              + " ".join(f"{row['test_acc']:.2f}" for row in hist))
print(f"target training: {time.perf_counter() - started:.0f} s")
C.record("01_transfer", dict(settings=settings, pretrain=[{k: round(r[k], 4) for k in KEYS} for r in pretrain_history],
                             **runs), "TINYVISION_FULL=1 python chapters/_execute.py 01_computer_vision_and_pretraining")

# %% [markdown]
# The verdict compares the two starts seed by seed (the same seed gives both the same shuffling and
# the same new classifier) on three measures: accuracy at the end (the mean test accuracy of the
# last three epochs, less noisy than the last epoch alone), accuracy early (after three epochs:
# the article's "faster training") and the gap between training accuracy (measured on the augmented
# batches during the epoch) and test accuracy at the end (the article's "less overfitting").
# The same function gives the verdict of the recorded full run.

# %%
def summarise(rows, last=3):
    end = rows[-last:]
    return dict(final=np.mean([r["test_acc"] for r in end]), early=rows[min(2, len(rows) - 1)]["test_acc"],
                gap=np.mean([r["train_acc"] - r["test_acc"] for r in end]))

def transfer_verdict(runs):
    """One line per measure: pretrained minus scratch, per seed, with the verdict it supports."""
    seeds = sorted(runs["scratch"], key=int)
    lines = []
    for measure, what in [("final", "test accuracy at the end"), ("early", "test accuracy after 3 epochs"),
                          ("gap", "train-test gap at the end")]:
        d = np.array([summarise(runs["pretrained"][s])[measure] - summarise(runs["scratch"][s])[measure]
                      for s in seeds])
        if len(d) == 1:
            verdict = "one seed only: no spread to judge it by"
        elif d.min() > 0 or d.max() < 0:
            verdict = f"{'higher' if d.min() > 0 else 'lower'} with pretraining in every seed"
        else:
            verdict = "no consistent difference (the sign changes with the seed)"
        lines.append(f"{what}: pretrained minus scratch {d.mean():+.3f} (per seed: "
                     + ", ".join(f"{v:+.3f}" for v in d) + f") -> {verdict}")
    return lines

C.say(f"source-task test accuracy after pretraining: {pretrain_history[-1]['test_acc']:.3f}")
for line in transfer_verdict(runs):
    C.say(line)

# %%
def plot_runs(ax, runs, title):
    """Test accuracy by epoch: the mean over seeds, shaded from the lowest to the highest seed."""
    for start, colour in [("scratch", "tab:gray"), ("pretrained", "tab:blue")]:
        acc = np.array([[r["test_acc"] for r in rows] for rows in runs[start].values()])
        epochs = np.arange(1, acc.shape[1] + 1)
        ax.plot(epochs, acc.mean(0), marker="o", ms=3, color=colour, label=f"{start} ({len(acc)} seeds)")
        ax.fill_between(epochs, acc.min(0), acc.max(0), color=colour, alpha=0.2)
    ax.set_xlabel("epoch on the target task"); ax.set_ylabel("target test accuracy")
    ax.set_title(title, fontsize=9); ax.grid(alpha=0.3); ax.legend()

rec = C.recorded("01_transfer") if C.MODE == "default" else None
fig, axes = plt.subplots(1, 2 if rec else 1, figsize=(12 if rec else 6, 4), squeeze=False)
plot_runs(axes[0, 0], runs, f"this run ({C.MODE} mode): ResNet-{settings['depth']}, "
                            f"{settings['few']} images per class, {split.source}")
if rec:
    r = rec["results"]
    plot_runs(axes[0, 1], r, f"recorded full run: ResNet-{r['settings']['depth']}, "
                             f"{r['settings']['target_train_per_class']} images per class")
    fig.text(0.5, -0.02, C.recorded_label(rec), ha="center", fontsize=8)
plt.tight_layout(); plt.show()
if rec:
    print("recorded full run (source-task test accuracy after pretraining "
          f"{rec['results']['pretrain'][-1]['test_acc']:.3f}):")
    for line in transfer_verdict(rec["results"]):
        print("  " + line)

# %% [markdown]
# The cells above print what was measured; read the verdict lines, not the article, for the
# direction. Two things the measures separate: *better accuracy* (the end measure) and *less
# overfitting* (the gap) are different claims, and a pretrained network can reach the higher test
# accuracy while also fitting its few training images more closely, that is with the larger gap.
# The recorded full run had one seed, so its verdict has no spread of its own: compare its
# difference with how much the per-seed differences of the live run vary.
#
# The mechanics are what carries over to real work: copy every weight except the classifier
# (`strict=False`) and fine-tune. `tinyvision.transfer` does this at scale (freezing, per-stage
# learning rates, self-supervised pretext tasks; `python -m tinyvision finetune`).
#
# ## 1.3 Mainstream large models (主流AI大模型简介)
#
# The Vision Transformer (chapter 2) is the Transformer encoder of natural-language processing
# applied to image patches, and its recipe, *pretrain big, then fine-tune*, comes from two language
# model families. Both stack the same Transformer block (self-attention, then a two-layer MLP, each
# with a residual connection and layer norm); what differs is the **pretraining objective**:
#
# | | GPT (OpenAI) | BERT (Google) |
# |---|---|---|
# | objective | **next-token prediction**: predict token $t$ from tokens $1..t-1$ (left to right) | **masked-token prediction**: hide 15% of the tokens (80% of them replaced by `[MASK]`, 10% by a random token, 10% unchanged) and predict them from both sides; plus next-sentence prediction |
# | attention | causal (a token sees only earlier tokens) | bidirectional (every token sees all) |
# | made for | generating text | representing text (classification, question answering, tagging) |
# | papers | Radford et al. 2018 (GPT), 2019 (GPT-2), Brown et al. 2020 (GPT-3) | Devlin et al. 2019 |
#
# ViT's own paper (Dosovitskiy et al., ICLR 2021) pretrains with **labels** (ImageNet-21k, JFT-300M);
# it tried BERT-style masked-patch prediction only as a preliminary experiment (§4.6: 79.9% on
# ImageNet for ViT-B/16, 2% better than training from scratch, 4% behind supervised pretraining).
#
# ### How big are they? Counted from the published configurations
# A block of width $d$ with an MLP of width $f$ has $4(d^2 + d)$ parameters in the query, key, value
# and output projections, $2df + f + d$ in the MLP and $4d$ in its two layer norms. A language model
# adds a token embedding (vocabulary $\times\, d$) and a position embedding (context $\times\, d$).
# We check the block formula against a block of tinyvision's own ViT-Ti/16, then count each model
# from the configuration its paper gives, and compare with the size the paper states.

# %%
def block_params(d, ffn):
    """One Transformer block: Q, K, V, O projections 4(d^2 + d), MLP 2 d ffn + ffn + d, two layer norms 4d."""
    return 4 * (d * d + d) + 2 * d * ffn + ffn + d + 4 * d

def language_model_params(vocab, context, d, layers, bert=False, final_norm=False):
    """Token and position embeddings plus ``layers`` blocks (MLP width 4d); BERT adds 2 segment
    embeddings, an embedding layer norm and a d x d pooler; GPT-2/3 a final layer norm."""
    n = (vocab + context) * d + layers * block_params(d, 4 * d)
    if bert:
        n += 2 * d + 2 * d + d * d + d
    return n + (2 * d if final_norm else 0)

vit_block = tv.models.vit_tiny_patch16_224().blocks[0]
C.say(f"block formula for d=192, MLP 768: {block_params(192, 768):,}; tinyvision's ViT-Ti/16 block: "
      f"{C.params_count(vit_block):,}")

# name: configuration (vocabulary, context, width, layers), objective, size the paper states
published = {
    "GPT":        (dict(vocab=40478, context=512, d=768, layers=12), "next token", 117e6),
    "BERT-base":  (dict(vocab=30522, context=512, d=768, layers=12, bert=True), "masked token", 110e6),
    "BERT-large": (dict(vocab=30522, context=512, d=1024, layers=24, bert=True), "masked token", 340e6),
    "GPT-2":      (dict(vocab=50257, context=1024, d=1600, layers=48, final_norm=True), "next token", 1542e6),
    "GPT-3":      (dict(vocab=50257, context=2048, d=12288, layers=96, final_norm=True), "next token", 175e9),
}
print(f"{'model':11s} {'objective':13s} {'layers':>6s} {'width':>6s} {'counted':>16s} {'paper':>9s} {'ratio':>6s}")
ratios = {}
for name, (cfg, objective, paper) in published.items():
    n = language_model_params(**cfg)
    ratios[name] = n / paper
    print(f"{name:11s} {objective:13s} {cfg['layers']:6d} {cfg['d']:6d} {n:16,d} {paper / 1e6:8,.0f}M {n / paper:6.3f}")
largest = max(language_model_params(**cfg) for cfg, _, _ in published.values())
C.say(f"verdict: every count is within {max(abs(r - 1) for r in ratios.values()):.1%} of the size its paper "
      f"states; the largest, GPT-3, has {largest / 1e9:.0f} billion parameters, "
      f"{1e12 / largest:.1f} times fewer than one trillion, the least the article's 'several trillion' can mean")

# %% [markdown]
# GPT's 117M comes from the GPT-2 paper (its smallest model "is equivalent to the original GPT");
# the GPT-2 paper's table lists 1542M for the largest model, whose configuration counts to 1558M
# here (the public checkpoint has 1,557,611,200 weights). For scale: ViT-B/16 has 86M parameters
# (exercise 4 counts it), the ResNet pretrained above under 0.3M (its count is printed above its
# first epoch).
#
# ### Masked versus next-token prediction, in miniature
# Both objectives need no labels: the text is its own target. A table of counts is the smallest
# "model" that shows the difference. From the text of Python's own documentation (the
# `pydoc_data` module that ships with Python; the cell prints how many characters), we count, in
# the first 90%, which character follows each pair of characters (next-character prediction,
# GPT-style: context on the left only) and which character sits between a left and a right
# neighbour (masked-character prediction, BERT-style: one character of context on each side). Both
# use two characters of context; we measure how often each predicts the held-out last 10%
# correctly.

# %%
import pydoc_data.topics

text = " ".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)).lower()
alphabet = "abcdefghijklmnopqrstuvwxyz .,"
V = len(alphabet)
ids = np.array([alphabet.find(ch) if ch in alphabet else alphabet.index(" ") for ch in text])
ids = ids[np.r_[True, (ids[1:] != alphabet.index(" ")) | (ids[:-1] != alphabet.index(" "))]]   # one space per run
cut = int(0.9 * len(ids))
train_ids, test_ids = ids[:cut], ids[cut:]

def count_table(a, b, target):
    """counts[a, b, c]: how often character c occurred with context (a, b)."""
    counts = np.zeros((V, V, V), np.int64)
    np.add.at(counts, (a, b, target), 1)
    return counts

next_char = count_table(train_ids[:-2], train_ids[1:-1], train_ids[2:])     # (two before) -> next
masked = count_table(train_ids[:-2], train_ids[2:], train_ids[1:-1])        # (before, after) -> middle
t = test_ids
acc_next = np.mean(next_char[t[:-2], t[1:-1]].argmax(axis=1) == t[2:])
acc_masked = np.mean(masked[t[:-2], t[2:]].argmax(axis=1) == t[1:-1])
C.say(f"{len(train_ids):,} training and {len(test_ids):,} held-out characters")
C.say(f"held-out accuracy: next character from the two before {acc_next:.3f}, "
      f"masked character from its two neighbours {acc_masked:.3f}")
C.say("verdict: " + ("context on both sides predicts a hidden character better" if acc_masked > acc_next else
                     "context on both sides did not help here") + f" ({acc_masked - acc_next:+.3f})")

snippet = t[200:260]
hidden = np.arange(2, len(snippet) - 1, 5)
filled = snippet.copy()
filled[hidden] = masked[snippet[hidden - 1], snippet[hidden + 1]].argmax(axis=1)
show = lambda a: "".join(alphabet[i] for i in a)
print("held-out text:  ", show(snippet))
print("every 5th masked:", "".join("_" if k in set(hidden) else ch for k, ch in enumerate(show(snippet))))
print("filled in:       ", show(filled))

rng = np.random.default_rng(0)
generated = [alphabet.index("t"), alphabet.index("h")]
for _ in range(70):                                  # GPT-style generation: sample the next one, append, repeat
    p = next_char[generated[-2], generated[-1]] + 0.01
    generated.append(rng.choice(V, p=p / p.sum()))
print("generated:       ", show(generated))

# %% [markdown]
# Where context on both sides helps, as the verdict line measures it here, that is the case for
# BERT's design: for *understanding* a sentence, both sides of a word are available. The price is
# that a masked model cannot generate text left to right, which is what GPT's objective trains for
# (the last line: sampled one character at a time from the next-character table; with two characters
# of context the words are plausible-looking nonsense; the published models above have a context
# of 512 to 2,048 tokens and up to 175 billion parameters).
#
# ## 1.4 Large models in industry (AI大模型在企业中的应用前景)
#
# The article surveys business uses (medical images, security, retail, driving) and obstacles
# (data privacy, fairness, compute). These are claims about markets that no experiment here can
# test; the compute side is measured in chapter 7.

# %% [markdown]
# ## Where the article is wrong
#
# * **§1.1, "traditional methods include template matching and deep-learning methods".** Deep
#   learning is what replaced the traditional detectors; the article's own next sentence contrasts
#   the two. Traditional detectors are template matching and hand-designed features with a
#   classifier, e.g. Viola and Jones (CVPR 2001, Haar features with boosting) and Dalal and Triggs
#   (CVPR 2005, HOG with a linear SVM).
# * **§1.1, "filtering methods include convolution filtering and mean filtering".** The mean filter
#   *is* a convolution (with the box kernel $1/k^2$), as the first filtering cell shows numerically;
#   they are not alternatives (Gonzalez and Woods, *Digital Image Processing*, 4th ed., §3.5, box
#   filters among the smoothing spatial filters).
# * **§1.2, "the purpose of pretraining is to learn from large-scale unlabelled data".** The
#   article's own next list includes supervised pretraining on ImageNet, and the most used vision
#   pretrained models are supervised: the ResNets of He et al. (CVPR 2016, ImageNet labels) and the
#   ViTs of Dosovitskiy et al. (ICLR 2021, ImageNet-21k or JFT-300M labels). The same sentence
#   equates transfer learning with fine-tuning; fine-tuning is one way to transfer, using the
#   frozen features with a new classifier (a linear probe) is another (Yosinski et al., *How
#   transferable are features in deep neural networks?*, NeurIPS 2014; Kornblith et al., *Do better
#   ImageNet models transfer better?*, CVPR 2019).
# * **§7.1, about the models §1.3 introduces: "Google's BERT and OpenAI's GPT are pretrained models
#   with several trillion parameters" (数万亿个参数).** BERT-base has 110M and BERT-large 340M
#   parameters (Devlin et al., NAACL 2019, §3); GPT 117M and GPT-2 at most 1542M (Radford et al.
#   2019, Table 2); GPT-3 175B (Brown et al., NeurIPS 2020, Table 2.1). The counts in §1.3 above
#   reproduce each figure from the published configuration; even the largest is several times
#   smaller than one trillion.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Predict before you compute where the exercise asks for a prediction. Solutions:
# `chapters/solutions/01_computer_vision_and_pretraining.py`; the checks: `chapters/checks/ch01.py`.

# %%
from checks import ch01 as check

# %% [markdown]
# ### Exercise 1: how much noise does a 3x3 mean filter remove? (predict)
# Pixel noise that is independent from pixel to pixel, with standard deviation $\sigma = 0.1$, goes
# through the 3x3 mean filter of §1.1. Predict the standard deviation of the filtered noise (away from
# the border) without running the filter. The check measures it with `F.conv2d` on a 256x256 noise
# field.

# %%
mean3_noise_std = None      # your prediction: a number

# %%
check.mean3_noise_std(mean3_noise_std)

# %% [markdown]
# ### Exercise 2: filtering by hand (implement)
# Write the 'same'-size filtering of §1.1 in NumPy, without tinyvision: for a grey image (H, W) and a
# square kernel (k, k) with k odd, pad the image with k // 2 zeros on every side and compute
# $y[i, j] = \sum_{u, v} k[u, v]\, x_{pad}[i + u, j + v]$. Two loops over the kernel's $k^2$ taps,
# each adding a shifted slice of the padded image, are enough. The check compares your result with
# `F.conv2d` for a non-symmetric kernel (and tells you if you flipped it).

# %%
def filter2d_numpy(image, kernel):
    """'same'-size cross-correlation of image (H, W) with an odd square kernel (k, k), zero padding."""
    return None          # your code

# %%
check.filter2d_numpy(filter2d_numpy)

# %% [markdown]
# ### Exercise 3: a matching score with the ratio test (implement)
# Mutual nearest neighbours accept a match even when a second candidate is almost as close. Lowe's
# ratio test (IJCV 2004, §7.1) keeps the match $i \to j$ only when the Euclidean distance from
# descriptor $i$ to its nearest neighbour $j$ in the other set is less than `ratio` times the distance
# to the second-nearest. Write it: given descriptors `d1` (N, D) and `d2` (M, D) with M >= 2, return an
# integer array (K, 2) of the accepted pairs (i, j), in increasing i. The check plants true matches
# among distractors and near-duplicates.

# %%
def ratio_test(d1, d2, ratio=0.8):
    """Pairs (i, j), j the nearest neighbour of d1[i] in d2, kept when dist(i, j) < ratio * second-nearest."""
    return None          # your code

# %%
check.ratio_test(ratio_test)

# %% [markdown]
# ### Exercise 4: count a Vision Transformer (derive)
# A ViT with patch size $P$ on $S \times S$ RGB images, width $d$, $L$ blocks (MLP width $4d$) and
# $K$ classes has: a patch embedding (a linear map of each $3P^2$-pixel patch to $d$, with bias),
# a class token ($d$), a position embedding for the $(S/P)^2 + 1$ tokens, $L$ blocks (§1.3's
# formula), a final layer norm ($2d$) and a linear head ($dK + K$). Write the count. The check
# compares it with tinyvision's ViT-Ti/16 and ViT-S/16 models and with the paper's ViT-B/16 (86M).

# %%
def vit_params(patch, image, d, layers, classes):
    """Number of parameters of a ViT (MLP width 4d, 3 input channels)."""
    return None          # your code

# %%
check.vit_params(vit_params)
