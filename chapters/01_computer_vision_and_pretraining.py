# %% [markdown]
# # Chapter 1 · Computer vision and pretrained models (计算机视觉与预训练模型概述)
#
# Before deep networks, vision systems were pipelines of hand-designed steps: filter the image,
# find edges and corners, match templates. This notebook builds each of those steps with
# tinyvision's convolution (and NumPy where no learning is involved), then shows in a small
# experiment why features *learned* on one task and reused on another (pretraining) help.

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

# QUICK mode (TINYVISION_QUICK=1): tiny subsets and 1-2 epochs, so the notebook runs in about a
# minute on a 2-core CPU; the numbers then only show that the code works, not what it measures.
QUICK = os.environ.get("TINYVISION_QUICK", "0") == "1"
sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
np.random.seed(0)
# %matplotlib inline
print("QUICK mode" if QUICK else "full mode", "| tinyvision", tv.__version__)

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
# Resolution is the number of pixels. Average pooling (a fixed 2x2 mean, `tv.nn.functional.avg_pool2d`)
# halves it: each output pixel summarises four inputs, and fine detail disappears.

# %%
x = tv.tensor(img.transpose(2, 0, 1)[None] / 255.0)            # (1, 3, 32, 32) float32
views = [x]
for _ in range(2):
    views.append(tv.nn.functional.avg_pool2d(views[-1], 2))
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, v in zip(axes, views):
    ax.imshow(v.numpy()[0].transpose(1, 2, 0)); ax.set_title(f"{v.shape[2]}x{v.shape[3]}"); ax.axis("off")
plt.show()

# %% [markdown]
# ### Filtering is convolution
# A linear filter replaces every pixel by a weighted sum of its neighbours,
# $y[i, j] = \sum_{u, v} k[u, v]\, x[i + u, j + v]$ (deep-learning "convolution" is this
# cross-correlation). The mean filter uses equal weights $1/k^2$ and smooths noise away together with
# detail. We filter a grey test scene with `tv.nn.functional.conv2d` and check one output pixel by hand.

# %%
scene = C.demo_scene()                                           # (96, 96) in [0, 1]
noisy = np.clip(scene + np.random.default_rng(1).normal(0, 0.1, scene.shape), 0, 1).astype(np.float32)

def filter2d(image, kernel):
    # 'same' output size: pad by half the kernel; image (H, W), kernel (k, k) -> (H, W)
    k = kernel.shape[0]
    out = tv.nn.functional.conv2d(tv.tensor(image[None, None]), tv.tensor(kernel[None, None]), padding=k // 2)
    return out.numpy()[0, 0]

mean3 = np.full((3, 3), 1 / 9, np.float32)
mean7 = np.full((7, 7), 1 / 49, np.float32)
smooth3, smooth7 = filter2d(noisy, mean3), filter2d(noisy, mean7)
i, j = 40, 50
print("by hand:", noisy[i - 1:i + 2, j - 1:j + 2].mean(), " conv2d:", smooth3[i, j])

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
# Pure NumPy: no learning, no gradients.

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

fig, axes = plt.subplots(2, 3, figsize=(10, 5))
for col, (im, title) in enumerate([(dull, "low contrast"), (stretched, "linear stretch"), (equalised, "equalised")]):
    axes[0, col].imshow(im, cmap="gray", vmin=0, vmax=1); axes[0, col].set_title(title); axes[0, col].axis("off")
    axes[1, col].hist(im.ravel(), bins=32, range=(0, 1)); axes[1, col].set_xlabel("grey level")
plt.tight_layout(); plt.show()

# %% [markdown]
# ### Edges: the Sobel operator
# Edges are large intensity gradients. Sobel kernels estimate $\partial I/\partial x$ and
# $\partial I/\partial y$ with a derivative across and a smoothing along; the gradient magnitude
# $\sqrt{G_x^2 + G_y^2}$ is the edge strength. Both kernels go through `conv2d` in one call (two output channels).

# %%
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
sobel_y = sobel_x.T.copy()
kernels = tv.tensor(np.stack([sobel_x, sobel_y])[:, None])          # (2, 1, 3, 3)
g = tv.nn.functional.conv2d(tv.tensor(scene[None, None]), kernels, padding=1).numpy()[0]
gx, gy = g
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
# suppression with a 7x7 max pool).

# %%
def gaussian_kernel(size=5, sigma=1.0):
    r = np.arange(size) - size // 2
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)

w = gaussian_kernel(5, 1.2)
Sxx, Syy, Sxy = (filter2d(a.astype(np.float32), w) for a in (gx * gx, gy * gy, gx * gy))
R = Sxx * Syy - Sxy ** 2 - 0.05 * (Sxx + Syy) ** 2

local_max = tv.nn.functional.max_pool2d(tv.tensor(R[None, None]), 7, stride=1, padding=3).numpy()[0, 0]
ys, xs = np.nonzero((R == local_max) & (R > 0.05 * R.max()))
print(f"{len(ys)} corners found")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(R, cmap="RdBu_r", vmin=-abs(R).max(), vmax=abs(R).max()); axes[0].set_title("Harris response R")
axes[1].imshow(scene, cmap="gray"); axes[1].scatter(xs, ys, s=30, c="red", marker="x"); axes[1].set_title("corners")
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
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
    corr = tv.nn.functional.conv2d(I, tv.tensor(t0[None, None])).numpy()[0, 0]
    box = tv.tensor(np.ones((1, 1, th, tw), np.float32))
    s1 = tv.nn.functional.conv2d(I, box).numpy()[0, 0]
    s2 = tv.nn.functional.conv2d(I * I, box).numpy()[0, 0]
    local_energy = np.maximum(s2 - s1 ** 2 / t0.size, 1e-8)
    return corr / np.sqrt(local_energy * (t0 ** 2).sum())

score = ncc_map(scene, t0)
y, x = np.unravel_index(score.argmax(), score.shape)
print(f"best match at (row {y}, col {x}), NCC = {score.max():.3f}")

# The weakness: a template matches one appearance. Enlarge the cross by 1.5x and match again.
big = np.kron(scene, np.ones((3, 3), np.float32))[::2, ::2]         # the scene zoomed 1.5x
score_big = ncc_map(big, t0)
print(f"same template on the 1.5x zoomed scene: best NCC = {score_big.max():.3f}")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
axes[0].imshow(template, cmap="gray"); axes[0].set_title("template")
axes[1].imshow(scene, cmap="gray"); axes[1].add_patch(plt.Rectangle((x, y), tw, th, fill=False, color="lime", lw=2))
axes[1].set_title(f"match, NCC {score.max():.2f}")
axes[2].imshow(score, cmap="magma"); axes[2].set_title("NCC map")
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
# Each step above was designed by hand for one kind of structure, and breaks when the appearance
# changes (scale, rotation, lighting, clutter): the article's first limitation of traditional vision,
# *hand-designed features struggle with complex structure*. A convolutional network has the same
# building block, `conv2d`, but learns its kernels from data, and stacks them so later layers combine
# edges into parts and objects.
#
# ## 1.2 Pretrained models (预训练模型概述)
#
# Pretraining means learning those kernels once, on a large (labelled or unlabelled) data set, and
# reusing them for new tasks. The article's claims: less labelled data needed, better accuracy, less
# overfitting, faster training. A miniature test: pretrain a small ResNet on five classes (the
# *source* task), then train on the *other* five classes with only a few labelled images each,
# starting either from the pretrained weights (new classifier head) or from scratch, with the same
# number of steps.

# %%
per_class = 40 if QUICK else 1000
few = 10 if QUICK else 50
split = C.load_data(train_per_class=per_class, test_per_class=20 if QUICK else 200)
C.describe(split)
source, target = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
src = C.Split(C.select_classes(split.train, source), C.select_classes(split.test, source), split.source)
tgt = C.Split(C.select_classes(split.train, target, per_class=few), C.select_classes(split.test, target),
              split.source)
print(f"source task: {len(src.train)} images; target task: {len(tgt.train)} labelled images")

depth = 8 if QUICK else 20
pre = C.cifar_resnet(depth, num_classes=5)
print("pretraining on the source classes")
C.fit(pre, src, "resnet_sgd", epochs=2 if QUICK else 15, batch_size=32 if QUICK else 128)

# %%
epochs_target = 3 if QUICK else 30
results = {}
for start in ["scratch", "pretrained"]:
    tv.manual_seed(1)
    model = C.cifar_resnet(depth, num_classes=5)
    if start == "pretrained":
        state = {k: v for k, v in pre.state_dict().items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)                 # keep the new head
    print(start)
    hist = C.fit(model, tgt, "resnet_sgd", epochs=epochs_target, batch_size=16, lr=0.05)
    results[start] = hist

for name, hist in results.items():
    plt.plot([h["epoch"] for h in hist], [h["test_acc"] for h in hist], marker="o", label=name)
plt.xlabel("epoch on the target task"); plt.ylabel("target test accuracy"); plt.legend(); plt.grid(alpha=0.3)
plt.title(f"{few} labelled images per class ({split.source})"); plt.show()
gain = results["pretrained"][-1]["test_acc"] - results["scratch"][-1]["test_acc"]
print(f"pretrained minus scratch after {epochs_target} epochs: {gain:+.3f}")

# %% [markdown]
# With real CIFAR-10 and the full settings, the pretrained start is expected to be ahead after the
# same number of steps: the stem and early stages already detect edges, colours and textures that the
# new classes share. In QUICK mode (tiny sets, few steps) the difference is within noise; the cell
# shows the mechanics: copy every weight except the classifier (`strict=False`) and fine-tune.
# `tinyvision.transfer` does this at scale (freezing, per-stage learning rates, self-supervised
# pretext tasks; `python -m tinyvision finetune`).
#
# ## 1.3 Mainstream large models (主流AI大模型简介) and 1.4 applications in industry (AI大模型在企业中的应用前景)
#
# The article surveys large pretrained models and their business use (efficiency, cost, accuracy;
# data privacy, fairness and compute as obstacles). Those sections have no experiment here; the two
# families it focuses on, the Vision Transformer and ResNet, are built and measured in chapters 2-4,
# and the compute side is measured in chapter 7.
