# %% [markdown]
# # Chapter 3 · Residual networks (ResNet（残差网络）模型)
#
# A residual block adds its input back to what its layers compute. This notebook checks that idea
# numerically, reproduces the degradation experiment in miniature (plain vs residual networks of
# growing depth), derives batch normalisation from its formula, and compares gradient clipping by
# norm and by value, and identity vs projection shortcuts.

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
# ## 3.1 The residual idea (残差网络概念)
# $$y = F(x) + x$$
# The block's layers learn only the *correction* $F$. If doing nothing is best, they push $F$ to 0,
# which is easy; and backpropagation gets $\partial y/\partial x = \partial F/\partial x + I$: the
# identity term carries the gradient past the block even when $\partial F/\partial x$ is small.
#
# A check: in tinyvision's `BasicBlock` (`y = relu(F(x) + x)`), setting the last batch-norm scale to
# zero makes $F \equiv 0$, and the block returns `relu(x)`.

# %%
block = tv.models.BasicBlock(16, 16).eval()
block.bn2.weight.data[:] = 0.0
x = tv.randn(2, 16, 8, 8)
with tv.no_grad():
    print("F = 0  =>  y == relu(x):", np.allclose(block(x).numpy(), np.maximum(x.numpy(), 0)))

# %% [markdown]
# ### Gradients at initialisation
# How much gradient reaches the first convolution of a freshly initialised network, as depth grows?
# One forward and backward pass on a batch, for plain and residual CIFAR networks of depth 6n + 2.

# %%
split = C.load_data(train_per_class=20 if QUICK else 500, test_per_class=10 if QUICK else 200)
C.describe(split)
xb = tv.tensor(C.normalised(C.subset(split.train, np.arange(32))))
yb = tv.tensor(split.train.targets[:32])
depths = [8, 20, 32] if QUICK else [8, 20, 32, 56, 110]
grad_norms = {"plain": [], "residual": []}
for depth in depths:
    for kind in grad_norms:
        tv.manual_seed(0)
        model = C.cifar_resnet(depth, widths=(8, 16, 32) if QUICK else (16, 32, 64), plain=kind == "plain")
        loss = tv.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        grad_norms[kind].append(float(np.linalg.norm(model.conv1.weight.grad.numpy())))
for kind, g in grad_norms.items():
    plt.semilogy(depths, g, marker="o", label=kind)
plt.xlabel("depth"); plt.ylabel("|dL/dW| of the first conv"); plt.legend(); plt.grid(alpha=0.3); plt.show()
print({k: [f"{v:.2e}" for v in g] for k, g in grad_norms.items()})

# %% [markdown]
# ### The degradation experiment
# He et al. observed that a deeper *plain* network reaches a higher *training* error than a
# shallower one (not overfitting: an optimisation problem), while residual networks improve with
# depth. We train plain and residual networks of two depths with the same recipe and compare their
# training curves. Full mode uses depths 20 and 56 on 5,000 images; QUICK mode only demonstrates the
# procedure with narrow networks and a few hundred images, where no conclusion can be drawn.

# %%
depths = [8, 14] if QUICK else [20, 56]
widths = (8, 16, 32) if QUICK else (16, 32, 64)
curves = {}
for depth in depths:
    for kind in ["plain", "residual"]:
        tv.manual_seed(0)
        model = C.cifar_resnet(depth, widths=widths, plain=kind == "plain")
        print(f"{kind}-{depth}")
        curves[f"{kind}-{depth}"] = C.fit(model, split, "resnet_sgd", epochs=2 if QUICK else 20,
                                          batch_size=32 if QUICK else 128, schedule="step")
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, hist in curves.items():
    style = "--" if name.startswith("plain") else "-"
    epochs = [h["epoch"] for h in hist]
    axes[0].plot(epochs, [1 - h["train_acc"] for h in hist], style, marker="o", label=name)
    axes[1].plot(epochs, [1 - h["test_acc"] for h in hist], style, marker="o", label=name)
for ax, t in zip(axes, ["training error", "test error"]):
    ax.set_xlabel("epoch"); ax.set_title(t); ax.legend(); ax.grid(alpha=0.3)
plt.show()
final = {k: round(1 - h[-1]["train_acc"], 3) for k, h in curves.items()}
print("final training error:", final)
deep, shallow = depths[1], depths[0]
print(f"plain: deeper has {'higher' if final[f'plain-{deep}'] > final[f'plain-{shallow}'] else 'lower'} training error; "
      f"residual: deeper has {'higher' if final[f'residual-{deep}'] > final[f'residual-{shallow}'] else 'lower'} training error")

# %% [markdown]
# ## 3.2 ResNet architecture (ResNet模型架构)
#
# Input stem, stacked residual stages, pooled output layer. The CIFAR ResNet-20: a 3x3 stem with 16
# channels, three stages of three blocks (16, 32, 64 channels at 32x32, 16x16, 8x8), global average
# pooling, a linear classifier.

# %%
resnet20 = tv.models.create("resnet20", num_classes=10)
tv.summary(resnet20, (1, 3, 32, 32), depth=2);

# %% [markdown]
# ## 3.3 Training techniques (ResNet模型训练技巧)
#
# ### Batch normalisation from its formula
# $$\bar{x} = \frac{1}{N}\sum_{i=1}^{N}x_i,\quad \sigma^2 = \frac{1}{N}\sum_{i=1}^{N}(x_i - \bar{x})^2,\quad
# \hat{x}_i = \frac{x_i - \bar{x}}{\sqrt{\sigma^2 + \epsilon}},\quad y_i = \gamma \hat{x}_i + \beta$$
# For images the statistics are per channel, over the batch and both spatial axes. In training mode
# the layer also updates running averages (momentum 0.1, the unbiased variance), which evaluation mode
# then uses instead of the batch statistics.

# %%
rng = np.random.default_rng(0)
xs = (rng.normal(size=(8, 4, 5, 5)) * 3 + 2).astype(np.float32)
bn = tv.nn.BatchNorm2d(4)
bn.weight.data[:] = rng.uniform(0.5, 2, 4); bn.bias.data[:] = rng.normal(size=4)

mean = xs.mean(axis=(0, 2, 3), keepdims=True)
var = xs.var(axis=(0, 2, 3), keepdims=True)
x_hat = (xs - mean) / np.sqrt(var + bn.eps)
y_np = bn.weight.numpy().reshape(1, -1, 1, 1) * x_hat + bn.bias.numpy().reshape(1, -1, 1, 1)

y_tv = bn.train()(tv.tensor(xs)).numpy()
print("training mode, max |formula - layer| =", np.abs(y_np - y_tv).max())
n = xs.size / xs.shape[1]
expected_running_var = 0.9 * 1.0 + 0.1 * var.ravel() * n / (n - 1)
print("running mean:", np.allclose(bn.running_mean.numpy(), 0.1 * mean.ravel(), atol=1e-5),
      " running var:", np.allclose(bn.running_var.numpy(), expected_running_var, atol=1e-4))
y_eval = bn.eval()(tv.tensor(xs)).numpy()
print("evaluation mode uses the running statistics, output mean per channel:", y_eval.mean(axis=(0, 2, 3)).round(2))


# %% [markdown]
# ### Exploding gradients and clipping by the norm
# The article's formula rescales the whole gradient when its L2 norm exceeds a threshold:
# $$\text{clip}(g, c) = \begin{cases} g & \|g\|_2 \le c \\ \frac{c}{\|g\|_2}\, g & \|g\|_2 > c \end{cases}$$
# Here $g$ is all parameters' gradients together (the *global* norm). We implement it in NumPy and
# compare with `tv.optim.clip_grad_norm_`, then contrast with clipping each *value* into $[-c, c]$
# (`clip_grad_value_`), which changes the gradient's direction.

# %%
def grads_of(model):
    model.zero_grad()
    tv.nn.functional.cross_entropy(model(xb), yb).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]

model = C.cifar_resnet(8, widths=(8, 16, 32))
g = grads_of(model)
norm = np.sqrt(sum((a ** 2).sum() for a in g))
c = 0.25 * norm
by_formula = [a * (c / norm) if norm > c else a for a in g]

grads_of(model)
total = tv.optim.clip_grad_norm_(model.parameters(), c)
by_norm = [p.grad.numpy() for p in model.parameters()]
grads_of(model)
tv.optim.clip_grad_value_(model.parameters(), 0.25 * max(abs(a).max() for a in g))
by_value = [p.grad.numpy() for p in model.parameters()]

flat = lambda gs: np.concatenate([a.ravel() for a in gs])
cos = lambda a, b: float(flat(a) @ flat(b) / np.linalg.norm(flat(a)) / np.linalg.norm(flat(b)))
print(f"norm before: {norm:.4f} (library reports {total:.4f}); after: {np.linalg.norm(flat(by_norm)):.4f} (target {c:.4f})")
print("max |formula - clip_grad_norm_| =", np.abs(flat(by_formula) - flat(by_norm)).max())
print(f"direction kept?  by norm: cos = {cos(g, by_norm):.4f};  by value: cos = {cos(g, by_value):.4f}")

# %% [markdown]
# A deliberately unstable run: a *plain* network (no shortcuts) with a far too large learning rate.
# Without clipping the loss explodes (or becomes NaN); with the global-norm clip at 1.0 each step's
# size is bounded and training proceeds. Same data, same initialisation.

# %%
steps = 10 if QUICK else 60
loader_x = tv.tensor(C.normalised(split.train))
loader_y = tv.tensor(split.train.targets)
runs = {}
for clip in [None, 1.0]:
    tv.manual_seed(0)
    model = C.cifar_resnet(8 if QUICK else 32, widths=(8, 16, 32), plain=True)
    opt = tv.optim.SGD(model.parameters(), lr=3.0, momentum=0.9)
    losses, norms = [], []
    for step in range(steps):
        idx = np.random.default_rng(step).choice(len(split.train), 32, replace=False)
        loss = tv.nn.functional.cross_entropy(model(loader_x[idx]), loader_y[idx])
        opt.zero_grad(); loss.backward()
        norms.append(tv.optim.clip_grad_norm_(model.parameters(), clip if clip else float("inf")))
        opt.step()
        losses.append(float(loss.item()))
    runs["no clipping" if clip is None else f"clip norm {clip}"] = (losses, norms)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, (losses, norms) in runs.items():
    axes[0].plot(np.nan_to_num(losses, nan=1e3, posinf=1e3), marker=".", label=name)
    axes[1].semilogy(np.nan_to_num(norms, nan=1e12, posinf=1e12), marker=".", label=name)
axes[0].set_title("loss (NaN drawn as 1000)"); axes[1].set_title("gradient norm before clipping")
for ax in axes: ax.set_xlabel("step"); ax.legend(); ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 3.4 Advantages, and identity vs projection shortcuts (ResNet模型的优势)
#
# Where a block halves the resolution and doubles the channels, $x$ and $F(x)$ differ in shape. Option
# **A** subsamples $x$ and pads the new channels with zeros (no parameters; the paper's CIFAR nets);
# option **B** projects with a strided 1x1 convolution and batch norm (torchvision's `downsample`).
# Elsewhere both use the identity.

# %%
results = {}
for option in ["A", "B"]:
    tv.manual_seed(0)
    model = C.cifar_resnet(8 if QUICK else 20, widths=(8, 16, 32) if QUICK else (16, 32, 64), shortcut=option)
    print(f"shortcut {option}: {C.params_count(model):,} parameters")
    results[option] = C.fit(model, split, "resnet_sgd", epochs=1 if QUICK else 20, batch_size=32 if QUICK else 128)
print({k: round(h[-1]["test_acc"], 3) for k, h in results.items()})
sc = tv.models.PadShortcut(16, 32, stride=2)
print("option A on (1, 16, 32, 32):", sc(tv.randn(1, 16, 32, 32)).shape)

# %% [markdown]
# The projection adds parameters and computation for a small or no accuracy gain on CIFAR, which is
# why the CIFAR ResNets use option A; ImageNet ResNets use B, where it also changes the width by
# the bottleneck's factor 4.
