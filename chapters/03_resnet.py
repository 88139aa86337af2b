# %% [markdown]
# # Chapter 3 · Residual networks (ResNet（残差网络）模型)
#
# A residual block adds its input back to what its layers compute. This chapter draws the block
# and its variants (bottleneck, pre-activation), shows numerically that its Jacobian is the
# identity plus the layers' Jacobian, measures gradients at initialisation and the degradation
# experiment (plain vs residual networks of growing depth), derives batch normalisation's forward
# and backward pass and checks them with `tv.gradcheck`, tests gradient clipping at learning rates
# high enough to destabilise training, and compares identity with projection shortcuts. It ends with the
# article's factual errors and four exercises.
#
# **Run modes.** By default the chapter trains small networks on 1,000 CIFAR-10 images and runs
# in a few minutes on a 2-core laptop CPU (the first line of the executed copy in
# `chapters/executed/` gives the measured wall time); beside each small run it plots the results
# of the long runs (20 epochs on 5,000 images, depths 20 and 56), recorded in
# `docs/results/chapters/03_*.json` with the machine, date and command that produced them (their
# `source` gives the recorded run's wall time: 157 minutes for the whole chapter).
# `TINYVISION_FULL=1` reruns those long experiments (and records them again);
# `TINYVISION_QUICK=1` is continuous integration's smoke test on a tiny synthetic set, whose
# numbers (each marked so) measure nothing.

# %%
import os, sys
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv
import tinyvision.nn.functional as F

sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
# %matplotlib inline
print(f"{C.MODE} mode | tinyvision {tv.__version__}")

# %% [markdown]
# **Data.** The helpers look for CIFAR-10 at `datasets/cache/cifar10-jpeg.tar.gz` (or
# `$TINYVISION_DATA`). When it is absent, as in continuous integration, they fall back to a small
# **synthetic** data set: ten classes of striped images whose stripe angle is the label. It keeps
# every cell runnable, but numbers measured on it say nothing about CIFAR-10; the printed `data:`
# line always says which one was used.

# %% [markdown]
# ## 3.1 The residual idea (残差网络概念)
# $$y = F(x) + x$$
# The block's layers learn only the *correction* $F$. If doing nothing is best, they push $F$ to
# 0, which is easy; and backpropagation gets
# $$\frac{\partial y}{\partial x} = I + \frac{\partial F}{\partial x}:$$
# the identity term hands the upstream gradient to $x$ unchanged, beside whatever the layers'
# Jacobian adds. The two terms can still partly cancel in some directions: the smallest singular
# value of $\partial y/\partial x$ printed below says how far.
#
# Three blocks recur in this chapter. The **basic block** (ResNet-18/34 and the CIFAR ResNets,
# He et al. 2016) applies a ReLU *after* the addition. The **bottleneck** (ResNet-50 and deeper)
# reduces the width fourfold with a 1x1 convolution, runs the 3x3 convolution there and expands
# back. The **pre-activation** block (He et al. 2016b, "Identity Mappings in Deep Residual
# Networks") moves batch norm and ReLU in front of each convolution, so nothing follows the
# addition and the shortcut is an exact identity from block to block.

# %%
def draw_block(ax, title, layers, after=None):
    """A residual block as a diagram: x on top, the layers of F below it, the addition, what
    follows it (``after``), y at the bottom; the shortcut on the right."""
    ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.axis("off"); ax.set_title(title, fontsize=10)
    rows = len(layers) + (4 if after else 3)
    ys = np.linspace(0.94, 0.06, rows)
    box = dict(boxstyle="round,pad=0.35", fc="#dbe9f6", ec="#3a6ea5")
    arrow = dict(arrowstyle="-|>", color="black", lw=1.2)
    ax.text(0.4, ys[0], "x", ha="center", va="center", fontsize=12)
    for i, layer in enumerate(layers):
        ax.text(0.4, ys[i + 1], layer, ha="center", va="center", fontsize=8, bbox=box)
    add = len(layers) + 1
    ax.text(0.4, ys[add], "+", ha="center", va="center", fontsize=14,
            bbox=dict(boxstyle="circle,pad=0.1", fc="white", ec="black"))
    if after:
        ax.text(0.4, ys[add + 1], after, ha="center", va="center", fontsize=8, bbox=dict(box, fc="#f6e3db", ec="#a55a3a"))
    ax.text(0.4, ys[-1], "y", ha="center", va="center", fontsize=12)
    for a, b in zip(ys[:-1], ys[1:]):
        ax.annotate("", xy=(0.4, b + 0.035), xytext=(0.4, a - 0.035), arrowprops=arrow)
    ax.plot([0.46, 0.88, 0.88], [ys[0], ys[0], ys[add]], color="#2a8a2a", lw=1.6)
    ax.annotate("", xy=(0.45, ys[add]), xytext=(0.88, ys[add]), arrowprops=dict(arrow, color="#2a8a2a"))
    ax.text(0.9, (ys[0] + ys[add]) / 2, "identity\nshortcut", fontsize=8, color="#2a8a2a", va="center")

fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
draw_block(axes[0], "basic block (post-activation)", ["3x3 conv, BN, ReLU", "3x3 conv, BN"], after="ReLU")
draw_block(axes[1], "bottleneck (ResNet-50 and deeper)",
           ["1x1 conv C -> C/4, BN, ReLU", "3x3 conv C/4 -> C/4, BN, ReLU", "1x1 conv C/4 -> C, BN"], after="ReLU")
draw_block(axes[2], "pre-activation block", ["BN, ReLU, 3x3 conv", "BN, ReLU, 3x3 conv"])
plt.tight_layout(); plt.show()

# %% [markdown]
# A first check: in tinyvision's `BasicBlock` (`y = relu(F(x) + x)`), setting the last batch-norm
# scale to zero makes $F \equiv 0$, and the block returns `relu(x)`, not `x`: the ReLU after the
# addition is part of every path through a post-activation block.

# %%
block = tv.models.BasicBlock(16, 16).eval()
block.bn2.weight.data[:] = 0.0
x = tv.randn(2, 16, 8, 8)
with tv.no_grad():
    print("F = 0  =>  y == relu(x):", np.allclose(block(x).numpy(), np.maximum(x.numpy(), 0)))

# %% [markdown]
# ### The pre-activation block, built from tinyvision layers
# $$F(x) = \text{conv}_2(\text{relu}(\text{bn}_2(\text{conv}_1(\text{relu}(\text{bn}_1(x)))))),\qquad y = x + F(x)$$
# It is four layers of `tv.nn` and one addition. Checks: the shape is kept, the parameter count
# is $2 \cdot 9C^2$ (two 3x3 convolutions without bias) $+ 4C$ (two batch norms), and
# `tv.gradcheck` compares its backward pass with central differences in float64.

# %%
class PreActBlock(tv.nn.Module):
    """Pre-activation residual block (He et al. 2016b):
    F(x) = conv2(relu(bn2(conv1(relu(bn1(x)))))), y = x + F(x); nothing follows the addition."""

    def __init__(self, channels):
        super().__init__()
        self.bn1 = tv.nn.BatchNorm2d(channels)
        self.conv1 = tv.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = tv.nn.BatchNorm2d(channels)
        self.conv2 = tv.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.relu = tv.nn.ReLU()

    def residual(self, x):
        """F(x), the branch that learns the correction."""
        return self.conv2(self.relu(self.bn2(self.conv1(self.relu(self.bn1(x))))))

    def forward(self, x):
        return x + self.residual(x)

pre = PreActBlock(8)
print("shape:", pre(tv.randn(2, 8, 6, 6)).shape, "| parameters:", pre.num_parameters(), "=", 2 * 9 * 8 ** 2 + 4 * 8)
print(tv.gradcheck(PreActBlock(3).to(np.float64), tv.randn(2, 3, 4, 4)))

# %% [markdown]
# ### $\partial y/\partial x = I + \partial F/\partial x$, numerically
# For a small pre-activation block (2 channels, a batch of 2 maps of 3x3: $x$ has 36 numbers) we
# build the whole $36 \times 36$ Jacobian twice: $\partial y/\partial x$ by autograd (one backward
# pass per output, with a one-hot upstream gradient) and $\partial F/\partial x$ by central
# differences of the branch alone. Their difference should be the identity matrix. Batch norm is
# in training mode, so each output depends on every input of the batch through the statistics:
# $\partial F/\partial x$ is dense.

# %%
tv.manual_seed(1)
small = PreActBlock(2).to(np.float64)
x0 = np.random.default_rng(0).normal(size=(2, 2, 3, 3))

def jacobian_autograd(f, x):
    """J[i, j] = d f(x)_i / d x_j, row by row: backpropagate the one-hot gradient of output i."""
    rows = []
    for i in range(x.size):
        xt = tv.tensor(x, dtype=np.float64, requires_grad=True)
        y = f(xt)
        seed = np.zeros(y.shape); seed.flat[i] = 1.0
        y.backward(seed)
        rows.append(xt.grad.numpy().ravel())
    return np.stack(rows)

def jacobian_numeric(f, x, h=1e-6):
    """J[i, j] by central differences (f(x + h e_j) - f(x - h e_j)) / 2h, column by column."""
    cols = []
    with tv.no_grad():
        for j in range(x.size):
            step = np.zeros_like(x); step.flat[j] = h
            plus, minus = f(tv.tensor(x + step, dtype=np.float64)), f(tv.tensor(x - step, dtype=np.float64))
            cols.append((plus.numpy() - minus.numpy()).ravel() / (2 * h))
    return np.stack(cols, axis=1)

J_y = jacobian_autograd(small, x0)
J_F = jacobian_numeric(small.residual, x0)
print("max |dy/dx - (I + dF/dx)| =", f"{np.abs(J_y - np.eye(x0.size) - J_F).max():.1e}")
print(f"largest singular value of dF/dx: {np.linalg.norm(J_F, 2):.2f};  of dy/dx: {np.linalg.norm(J_y, 2):.2f};  "
      f"smallest of dy/dx: {np.linalg.svd(J_y, compute_uv=False).min():.3f}")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, M, t in zip(axes, [J_y, J_y - J_F, J_F], ["dy/dx (autograd)", "dy/dx - dF/dx", "dF/dx (finite differences)"]):
    im = ax.imshow(M, cmap="RdBu_r", vmin=-1.5, vmax=1.5); ax.set_title(t); ax.set_xticks([]); ax.set_yticks([])
fig.colorbar(im, ax=axes, shrink=0.8); plt.show()

# %% [markdown]
# In the post-activation `BasicBlock`, $y = \text{relu}(F(x) + x)$, so
# $\partial y/\partial x = D\,(I + \partial F/\partial x)$ with $D$ the diagonal 0/1 mask of the
# ReLU: wherever $F(x) + x < 0$ the identity path is cut too. The fraction of cut rows, for the
# same input:

# %%
tv.manual_seed(1)
basic = tv.models.BasicBlock(2, 2).to(np.float64)
with tv.no_grad():
    x0t = tv.tensor(x0, dtype=np.float64)
    pre_relu = (basic.residual(x0t) + x0t).numpy()
J_basic = jacobian_autograd(basic, x0)
J_basic_F = jacobian_numeric(basic.residual, x0)
mask = (pre_relu.ravel() > 0).astype(float)
print("max |dy/dx - D (I + dF/dx)| =", f"{np.abs(J_basic - mask[:, None] * (np.eye(x0.size) + J_basic_F)).max():.1e}")
C.say(f"rows of dy/dx the ReLU after the addition sets to zero: {1 - mask.mean():.0%}")

# %% [markdown]
# ### Gradients at initialisation
# How large is the gradient that reaches the first convolution of a freshly initialised network,
# as depth grows? One forward and backward pass on a batch of 32 images, for plain (no
# shortcuts) and residual CIFAR networks of depth 6n + 2, both with batch norm after every
# convolution. The verdicts below name what this run measured, across depths and, in the deepest
# network, from the last layer back to the first, with a stated convention: a gradient that
# changes by more than a factor of 1000 *explodes* (grows) or *vanishes* (shrinks); by a factor of
# 10 to 1000 it *grows* or *shrinks*; otherwise it stays within a factor of 10.

# %%
split = C.load_data(*C.by_mode((100, 50), (20, 10), full=(500, 200)))
C.describe(split)
xb = tv.tensor(C.normalised(C.subset(split.train, np.arange(32))))
yb = tv.tensor(split.train.targets[:32])
depths = C.by_mode([8, 20, 32, 56, 110], [8, 14, 20])
widths = C.by_mode((16, 32, 64), (8, 16, 32))
first_conv, profiles = {"plain": [], "residual": []}, {}
for depth in depths:
    for kind in first_conv:
        tv.manual_seed(0)
        model = C.cifar_resnet(depth, widths=widths, plain=kind == "plain")
        F.cross_entropy(model(xb), yb).backward()
        convs = [m for m in model.modules() if isinstance(m, tv.nn.Conv2d) and m.weight.ndim == 4 and m.weight.shape[-1] == 3]
        profiles[kind, depth] = [float(np.linalg.norm(m.weight.grad.numpy())) for m in convs]
        first_conv[kind].append(profiles[kind, depth][0])

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for kind, g in first_conv.items():
    axes[0].semilogy(depths, g, marker="o", label=kind)
axes[0].set_xlabel("depth"); axes[0].set_ylabel("|dL/dW| of the first conv"); axes[0].set_title("first layer, by depth")
for kind in first_conv:
    axes[1].semilogy(profiles[kind, depths[-1]], label=f"{kind}-{depths[-1]}")
axes[1].set_xlabel("3x3 conv, from the input (0) to the output"); axes[1].set_title("every layer, deepest network")
for ax in axes: ax.legend(); ax.grid(alpha=0.3)
plt.show()

def growth(ratio):
    """Name a ratio of gradient norms (the convention stated above)."""
    for bound, word in [(1e3, "explodes"), (10, "grows"), (0.1, "stays within a factor of 10"), (1e-3, "shrinks")]:
        if ratio > bound:
            return f"x{ratio:.3g}: {word}"
    return f"x{ratio:.3g}: vanishes"

for kind, g in first_conv.items():
    C.say(f"{kind}: |dL/dW| of the first conv, depth {depths[0]} -> {depths[-1]}: {g[0]:.2e} -> {g[-1]:.2e}, "
          f"{growth(g[-1] / g[0])}")
    p = profiles[kind, depths[-1]]
    C.say(f"  {kind}-{depths[-1]}, from its last 3x3 conv back to its first: {p[-1]:.2e} -> {p[0]:.2e}, {growth(p[0] / p[-1])}")
C.say(f"at depth {depths[-1]} the plain network's first-layer gradient is {first_conv['plain'][-1] / first_conv['residual'][-1]:.3g} "
      f"times the residual network's")

# %% [markdown]
# The plain networks here have batch norm after every convolution and He initialisation, so their
# forward signal neither dies nor blows up; what the measurement shows is the *backward* signal
# of a deep plain stack. Yang et al. (2019, "A Mean Field Theory of Batch Normalization") prove
# that batch norm in a deep network *without* shortcuts makes gradients grow exponentially with
# depth at initialisation; the shortcuts add the identity to every block's Jacobian (above), which
# changes that product of Jacobians: compare the plain and residual verdicts. He et al. (2016, §4.1) argue that the degradation below is *not* a
# vanishing-gradient problem: their ImageNet plain nets (18 and 34 layers) with batch norm had
# "healthy" gradient norms.

# %% [markdown]
# ### The degradation experiment
# He et al. (2016, Fig. 1 and 6) observed that a deeper *plain* network reaches a higher
# **training** error than a shallower one (not overfitting: an optimisation problem), while with
# shortcuts the deeper network trained at least as well, and, after their full schedule (64,000
# iterations at batch 128, about 164 epochs of 50,000 images), better. We train plain and residual
# networks of two depths with one recipe and compare their training error at the end.
#
# - **Default**: narrow networks (8, 16, 32 channels) of depth 8 and 32, 6 epochs on 1,000
#   images, three seeds each, so each verdict can be set against the seed spread (each run
#   prints its time).
# - **Full** (`TINYVISION_FULL=1`, recorded): the paper's widths (16, 32, 64), depths 20 and
#   56, 20 epochs on 5,000 images, one seed.
#
# Both are far shorter than the paper's schedule: they can test the degradation of plain nets and
# whether shortcuts remove it, but whether deeper residual networks end *better*, as the paper
# found after its full schedule, may need more training than either gives; the verdicts below
# report what these runs show.

# %%
def curves(history):
    """A C.fit history as the lists a recorded result keeps."""
    return {"train_loss": [round(h["train_loss"], 4) for h in history],
            "train_error": [round(1 - h["train_acc"], 4) for h in history],
            "test_error": [round(1 - h["test_acc"], 4) for h in history]}

def train_runs(builders, seeds, epochs, batch_size, **options):
    """Train the model each builder makes, once per seed: {name: [curves of each seed]}."""
    runs = {}
    for name, build in builders.items():
        runs[name] = []
        for seed in seeds:
            tv.manual_seed(seed)
            history = C.fit(build(), split, "resnet_sgd", epochs=epochs, batch_size=batch_size, seed=seed,
                            verbose=False, **options)
            runs[name].append(curves(history))
            C.say(f"{name}, seed {seed}: training error {runs[name][-1]['train_error'][-1]:.3f}, test error "
                  f"{runs[name][-1]['test_error'][-1]:.3f} after {epochs} epochs ({history[-1]['wall_time']:.0f} s)")
    return runs

def final(runs, key):
    """{name: [last-epoch value of ``key`` for each seed]}."""
    return {name: [r[key][-1] for r in seeds] for name, seeds in runs.items()}

def compare(values, a, b, what):
    """Verdict on mean(values[a]) - mean(values[b]) against the spread over seeds."""
    va, vb = np.array(values[a]), np.array(values[b])
    diff = (va.mean() - vb.mean()) * 100
    head = f"{what}: {a} {va.mean():.3f} vs {b} {vb.mean():.3f}"
    if len(va) < 2:
        return f"{head}: {a} is {abs(diff):.1f} points {'higher' if diff > 0 else 'lower'} (one seed: no spread measured)"
    spread = max(np.ptp(va), np.ptp(vb)) * 100
    if abs(diff) <= spread:
        return f"{head}: no difference beyond the seed spread ({diff:+.1f} points, spread {spread:.1f})"
    return f"{head}: {a} is {abs(diff):.1f} points {'higher' if diff > 0 else 'lower'} (seed spread {spread:.1f})"

def degradation_verdicts(runs, shallow, deep, say=C.say):
    err = final(runs, "train_error")
    say(compare(err, f"plain-{deep}", f"plain-{shallow}", "training error"))
    say(compare(err, f"residual-{deep}", f"plain-{deep}", "training error"))
    say(compare(err, f"residual-{deep}", f"residual-{shallow}", "training error"))

def plot_runs(axes, runs, label):
    for name, seeds in runs.items():
        for ax, key in zip(axes, ["train_error", "test_error"]):
            mean = np.mean([s[key] for s in seeds], axis=0)
            ax.plot(np.arange(1, len(mean) + 1), mean, "--" if name.startswith("plain") else "-", marker=".", label=name)
            ax.set_title(f"{key.replace('_', ' ')}: {label}", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch"); ax.legend(fontsize=8); ax.grid(alpha=0.3)

degradation = C.by_mode(dict(depths=(8, 32), widths=(8, 16, 32), seeds=(0, 1, 2), epochs=6, batch_size=32, schedule="onecycle"),
                        dict(depths=(8, 14), widths=(8, 16, 32), seeds=(0,), epochs=1, batch_size=32, schedule="onecycle"),
                        full=dict(depths=(20, 56), widths=(16, 32, 64), seeds=(0,), epochs=20, batch_size=128, schedule="step"))
shallow, deep = degradation["depths"]
builders = {f"{kind}-{d}": (lambda d=d, kind=kind: C.cifar_resnet(d, widths=degradation["widths"], plain=kind == "plain"))
            for d in (shallow, deep) for kind in ("plain", "residual")}
runs = train_runs(builders, degradation["seeds"], degradation["epochs"], degradation["batch_size"],
                  schedule=degradation["schedule"])
C.record("03_degradation", dict(data=split.source, train_per_class=len(split.train) // 10,
                                test_per_class=len(split.test) // 10, **degradation, runs=runs),
         "TINYVISION_FULL=1 python chapters/_execute.py 03_resnet")
print(f"\nThis run ({C.MODE} mode, {len(split.train)} {split.source} training images, mean over seeds {list(degradation['seeds'])}):")
degradation_verdicts(runs, shallow, deep)

# %% [markdown]
# The curves of this run, and beside them those of the recorded full run (in full mode this run
# *is* the full run, just recorded), with that run's verdicts computed from its recorded numbers.

# %%
recorded = None if C.FULL else C.recorded("03_degradation")
fig, axes = plt.subplots(1, 4 if recorded else 2, figsize=(16 if recorded else 9, 3.8))
plot_runs(axes[:2], runs, f"this run ({C.MODE})")
if recorded:
    r = recorded["results"]
    plot_runs(axes[2:], r["runs"], f"recorded, {r['epochs']} epochs on {10 * r['train_per_class']} images")
plt.tight_layout(); plt.show()
if recorded:
    print(C.recorded_label(recorded))
    print(f"Recorded full run ({10 * r['train_per_class']} {r['data']} images, widths {tuple(r['widths'])}, "
          f"{r['epochs']} epochs, seeds {r['seeds']}):")
    degradation_verdicts(r["runs"], *r["depths"], say=print)

# %% [markdown]
# How to read the three verdicts of each run: the first (deep vs shallow *plain*) tests
# degradation; the second (residual vs plain at the larger depth) tests whether shortcuts help the
# deep network; the third (deep vs shallow *residual*) tests whether they remove the degradation
# (the paper: the deeper residual network trains at least as well) and the paper's "deeper is
# better". Where a difference is within the seed spread, the run does not support either
# direction; the recorded run has one seed, so its differences have no spread to be judged
# against. In the recorded full run the shortcuts lowered the 56-layer network's training error
# by 6 points, but residual-56 still ended far above residual-20, and above plain-20 too: after
# 20 epochs the shortcuts had not removed the degradation, and that run does not support "deeper
# is better". Runs this short do not refute the paper either, whose numbers come from its full
# schedule: a deeper network has more to fit and, in a few epochs, may simply not have caught up.
# The paper's own CIFAR-10 numbers (Table 6, test error after the full
# schedule): ResNet-20 8.75%, ResNet-32 7.51%, ResNet-56 6.97%, ResNet-110 6.43% (best of five
# runs; mean 6.61 ± 0.16%).

# %% [markdown]
# ## 3.2 ResNet architecture (ResNet模型架构)
#
# Input stem, stacked residual stages, global average pooling, a linear classifier. The CIFAR
# ResNet-20: a 3x3 stem with 16 channels, three stages of three blocks (16, 32, 64 channels at
# 32x32, 16x16, 8x8), global average pooling, a linear classifier.

# %%
resnet20 = tv.models.create("resnet20", num_classes=10)
tv.summary(resnet20, (1, 3, 32, 32), depth=2);

# %% [markdown]
# ### The bottleneck block, built from tinyvision layers
# $$F(x) = \text{bn}_3(\text{conv}^{1\times1}_3(\text{relu}(\text{bn}_2(\text{conv}^{3\times3}_2(\text{relu}(\text{bn}_1(\text{conv}^{1\times1}_1(x)))))))),\qquad y = \text{relu}(F(x) + x)$$
# With $C$ channels in and out and $C/4$ inside, its convolutions have $C \cdot C/4 + 9 (C/4)^2 +
# C/4 \cdot C = \tfrac{17}{16} C^2$ weights (272 for $C = 16$; with its 48 batch-norm parameters,
# the 320 printed below), against $18 C^2$ for a basic block's two 3x3 convolutions at width $C$:
# the reason ResNet-50 and deeper use it. We build it from `tv.nn` layers with the
# library's parameter names, load the library block's weights into it, and compare outputs; then
# gradient-check it.

# %%
class BottleneckBlock(tv.nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, identity shortcut, ReLU after the addition (He et al. 2016, Fig. 5)."""

    def __init__(self, channels):
        super().__init__()
        planes = channels // 4
        self.conv1, self.bn1 = tv.nn.Conv2d(channels, planes, 1, bias=False), tv.nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = tv.nn.Conv2d(planes, planes, 3, padding=1, bias=False), tv.nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = tv.nn.Conv2d(planes, channels, 1, bias=False), tv.nn.BatchNorm2d(channels)
        self.relu = tv.nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + x)

mine, library = BottleneckBlock(16), tv.models.Bottleneck(16, 4)
library.train()
mine.load_state_dict(library.state_dict())
xbn = tv.randn(2, 16, 6, 6)
print("shape:", mine(xbn).shape, "| parameters:", mine.num_parameters(), "(library:", library.num_parameters(), ")")
print("max |mine - tv.models.Bottleneck| =", np.abs(mine(xbn).numpy() - library(xbn).numpy()).max())
print(tv.gradcheck(BottleneckBlock(8).to(np.float64), tv.randn(2, 8, 3, 3)))

# %% [markdown]
# ## 3.3 Training techniques (ResNet模型训练技巧)
#
# ### Batch normalisation: the forward pass from its formula
# For each channel (over the batch and, for images, both spatial axes: $M$ values),
# $$\mu = \frac{1}{M}\sum_{i=1}^{M}x_i,\quad \sigma^2 = \frac{1}{M}\sum_{i=1}^{M}(x_i - \mu)^2,\quad
# \hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}},\quad y_i = \gamma \hat{x}_i + \beta$$
# The last step, a learned scale $\gamma$ and shift $\beta$ per channel, is part of batch norm
# (Ioffe & Szegedy 2015, Algorithm 1); the article leaves it out. In training mode the layer also
# updates running averages (momentum 0.1, the unbiased variance), which evaluation mode then uses
# instead of the batch statistics.

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
print("output mean per channel (= beta):", y_tv.mean(axis=(0, 2, 3)).round(3), " beta:", bn.bias.numpy().round(3))
print("output std per channel (~ gamma):", y_tv.std(axis=(0, 2, 3)).round(3), " gamma:", bn.weight.numpy().round(3))

# %% [markdown]
# ### The backward pass, derived on the computational graph
# Take features $x$ of shape $(N, D)$ (for images, $N \to M = NHW$ and $D \to C$). Write the
# forward pass as a chain of small nodes, each easy to differentiate, and walk it backwards from
# $g = \partial L/\partial y$ (the cs231n way):
#
# | forward node | backward (local derivative times upstream) |
# |---|---|
# | $\mu = \frac{1}{N}\sum_i x_i$ | $\partial L/\partial x_i \mathrel{+}= \frac{1}{N}\,\partial L/\partial \mu$ |
# | $x_c = x - \mu$ | $\partial L/\partial x = \partial L/\partial x_c$, $\;\partial L/\partial \mu = -\sum_i \partial L/\partial x_{c,i}$ |
# | $\sigma^2 = \frac{1}{N}\sum_i x_{c,i}^2$ | $\partial L/\partial x_{c,i} \mathrel{+}= \frac{2 x_{c,i}}{N}\,\partial L/\partial \sigma^2$ |
# | $s = \sqrt{\sigma^2 + \epsilon}$ | $\partial L/\partial \sigma^2 = \frac{1}{2s}\,\partial L/\partial s$ |
# | $\hat{x} = x_c / s$ | $\partial L/\partial x_c = \partial L/\partial \hat{x} / s$, $\;\partial L/\partial s = -\sum_i \partial L/\partial \hat{x}_i\, x_{c,i} / s^2$ |
# | $y = \gamma \hat{x} + \beta$ | $\partial L/\partial \hat{x} = g\gamma$, $\;\partial L/\partial\gamma = \sum_i g_i \hat{x}_i$, $\;\partial L/\partial\beta = \sum_i g_i$ |
#
# $x_c$ feeds two nodes ($\hat{x}$ and $\sigma^2$), so its gradient is the sum of both paths, and
# $x$ feeds two ($x_c$ directly and through $\mu$). Substituting the rows into one another and
# using $\sum_i x_{c,i} = 0$ collapses them into the **compact formula**, with
# $d\hat{x} = g\gamma$:
# $$\frac{\partial L}{\partial x_i} = \frac{1}{s}\left(d\hat{x}_i - \frac{1}{N}\sum_j d\hat{x}_j - \hat{x}_i\,\frac{1}{N}\sum_j d\hat{x}_j\,\hat{x}_j\right)$$
# Read it as: the upstream gradient, minus its mean (the $\mu$ path: shifting every $x$ together
# changes nothing), minus its component along $\hat{x}$ (the $\sigma^2$ path: scaling $x_c$
# changes nothing), divided by $s$. Both versions in NumPy:

# %%
def bn_forward(x, gamma, beta, eps=1e-5):
    """Batch norm of x (N, D) over the batch, node by node; returns y and what backward needs."""
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    s = np.sqrt(var + eps)
    xhat = xc / s
    return gamma * xhat + beta, (xc, s, xhat, gamma)

def bn_backward_graph(g, cache):
    """Backward node by node, in reverse order of bn_forward (the table above, bottom to top)."""
    xc, s, xhat, gamma = cache
    n = g.shape[0]
    dgamma, dbeta = (g * xhat).sum(axis=0), g.sum(axis=0)
    dxhat = g * gamma
    dxc = dxhat / s                                  # xhat = xc / s, through xc
    ds = -(dxhat * xc / s ** 2).sum(axis=0)          # ... and through s
    dvar = ds / (2 * s)                              # s = sqrt(var + eps)
    dxc = dxc + 2 * xc / n * dvar                    # var = mean(xc^2): xc's second path
    dmu = -dxc.sum(axis=0)                           # xc = x - mu
    dx = dxc + dmu / n                               # mu = mean(x): x's second path
    return dx, dgamma, dbeta

def bn_backward_compact(g, cache):
    """The compact formula: (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / s."""
    xc, s, xhat, gamma = cache
    dxhat = g * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / s
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)

rng = np.random.default_rng(1)
x_nd, gamma, beta = rng.normal(size=(6, 5)) * 2 + 1, rng.uniform(0.5, 2, 5), rng.normal(size=5)
g = rng.normal(size=(6, 5))
y_nd, cache = bn_forward(x_nd, gamma, beta)
graph, compact = bn_backward_graph(g, cache), bn_backward_compact(g, cache)

tensors = [tv.tensor(a, dtype=np.float64, requires_grad=True) for a in (x_nd, gamma, beta)]
F.batch_norm(tensors[0], None, None, tensors[1], tensors[2], training=True).backward(g)
for name, a, b, t in zip(["dx", "dgamma", "dbeta"], graph, compact, tensors):
    print(f"{name:6s} max |graph - compact| = {np.abs(a - b).max():.1e},  max |compact - tinyvision| = "
          f"{np.abs(b - t.grad.numpy()).max():.1e}")
print("sum of dx per feature (shifting all x together changes nothing):", np.abs(compact[0].sum(axis=0)).max().round(12))

# %% [markdown]
# `tv.gradcheck` compares tinyvision's batch norm (its backward is the compact formula, in
# `tinyvision/ops/norm.py`) with central differences in float64, for a random upstream gradient:
# first on features with $x$, $\gamma$ and $\beta$ all checked, then on images through the
# `BatchNorm2d` layer.

# %%
print(tv.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), *tensors))
layer = tv.nn.BatchNorm2d(3).to(np.float64)
layer.weight.data[:] = [0.5, 1.0, 2.0]
print(tv.gradcheck(layer, tv.randn(4, 3, 3, 3)))

# %% [markdown]
# ### Clipping by the norm: the article's formula against the library
# The article's formula rescales the whole gradient when its L2 norm exceeds a threshold:
# $$\text{clip}(g, c) = \begin{cases} g & \|g\|_2 \le c \\ \frac{c}{\|g\|_2}\, g & \|g\|_2 > c \end{cases}$$
# Here $g$ is all parameters' gradients together (the *global* norm). We implement it in NumPy and
# compare with `tv.optim.clip_grad_norm_`, then contrast with clipping each *value* into
# $[-c, c]$ (`clip_grad_value_`), which the article's prose describes instead and which changes
# the gradient's direction.

# %%
def grads_of(model):
    model.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]

model = C.cifar_resnet(8, widths=(8, 16, 32))
grads = grads_of(model)
norm = np.sqrt(sum((a ** 2).sum() for a in grads))
c = 0.25 * norm
by_formula = [a * (c / norm) if norm > c else a for a in grads]

grads_of(model)
total = tv.optim.clip_grad_norm_(model.parameters(), c)
by_norm = [p.grad.numpy() for p in model.parameters()]
grads_of(model)
tv.optim.clip_grad_value_(model.parameters(), 0.25 * max(abs(a).max() for a in grads))
by_value = [p.grad.numpy() for p in model.parameters()]

flat = lambda gs: np.concatenate([a.ravel() for a in gs])
cos = lambda a, b: float(flat(a) @ flat(b) / np.linalg.norm(flat(a)) / np.linalg.norm(flat(b)))
print(f"norm before: {norm:.4f} (library reports {float(total):.4f}); after: {np.linalg.norm(flat(by_norm)):.4f} (target {c:.4f})")
print("max |formula - clip_grad_norm_| =", np.abs(flat(by_formula) - flat(by_norm)).max())
print(f"direction kept?  by norm: cos = {cos(grads, by_norm):.4f};  by value: cos = {cos(grads, by_value):.4f}")

# %% [markdown]
# ### A run that diverges, with and without clipping
# Batch norm after every convolution makes each convolution's output independent of the scale of
# its weights, so a too-large learning rate in a ResNet tends to inflate the weights instead of
# blowing up the loss: such a network is a poor demonstration of exploding updates. We use a
# network without any normalisation instead: a three-layer perceptron on the flattened images,
# SGD with momentum 0.9, at two learning rates (0.1 and 1.0), each with no clipping and with the
# global norm clipped at 1.0. Same data order, same initialisation. Clipping bounds each step's
# length to $\text{lr} \cdot c$ before momentum; whether that is enough to train is what the
# verdicts measure: *diverged* (a non-finite loss), *learns* (the mean loss of the last 20 steps
# below chance, $\ln 10 = 2.30$, by more than 0.2), or *does not learn*.

# %%
def perceptron():
    return tv.nn.Sequential(tv.nn.Flatten(), tv.nn.Linear(3 * 32 * 32, 256), tv.nn.ReLU(),
                            tv.nn.Linear(256, 256), tv.nn.ReLU(), tv.nn.Linear(256, 10))

def outcome(losses):
    """diverged / learns / does not learn, from a run's losses."""
    losses = np.asarray(losses)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return f"diverged: loss {losses[bad[0]]} at step {bad[0]} (largest finite loss before it {losses[:bad[0]].max():.3g})"
    tail = losses[-20:].mean()
    return f"{'learns' if tail < np.log(10) - 0.2 else 'does not learn'}: mean loss of the last 20 steps {tail:.2f}"

steps = C.by_mode(150, 30)
train_x, train_y = tv.tensor(C.normalised(split.train)), tv.tensor(split.train.targets)
clip_runs = {}
for lr in [0.1, 1.0]:
    for clip in [None, 1.0]:
        tv.manual_seed(0)
        net = perceptron()
        opt = tv.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        losses, norms = [], []
        with np.errstate(all="ignore"):                   # the diverging run overflows on purpose
            for step in range(steps):
                idx = np.random.default_rng(step).choice(len(split.train), 32, replace=False)
                loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
                opt.zero_grad(); loss.backward()
                norms.append(float(tv.optim.clip_grad_norm_(net.parameters(), clip if clip else float("inf"))))
                opt.step()
                losses.append(float(loss.item()))
        name = f"lr {lr}, " + ("no clipping" if clip is None else f"clip norm {clip}")
        clip_runs[name] = (losses, norms)
        C.say(f"{name}: {outcome(losses)}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, (losses, norms) in clip_runs.items():
    losses, norms = np.asarray(losses), np.asarray(norms)
    axes[0].plot(np.where(np.isfinite(losses), np.minimum(losses, 10), 10), label=name)
    axes[1].semilogy(np.where(np.isfinite(norms), norms, np.nan), label=name)
axes[0].axhline(np.log(10), color="grey", lw=0.8, ls=":"); axes[0].set_ylim(0, 10.5)
axes[0].set_title("loss (above 10, inf and NaN drawn at 10; dotted: ln 10)", fontsize=9)
axes[1].set_title("gradient norm before clipping (gaps: inf or NaN)", fontsize=9)
for ax in axes: ax.set_xlabel("step"); ax.legend(fontsize=8); ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Clipping is a guard against single huge steps, not a substitute for a learning rate that suits
# the network: a run can stay finite under clipping and still not learn. Read the verdicts one
# learning rate at a time: where the clipped run learns and the unclipped one does not, clipping
# made that rate usable; where the clipped run stays finite but does not learn, it only prevented
# the blow-up. The ResNet paper itself
# trains without clipping (He et al. 2016, §3.4); clipping by norm comes from recurrent networks
# (Pascanu et al. 2013).

# %% [markdown]
# ## 3.4 Identity vs projection shortcuts (ResNet模型的优势)
#
# Where a block halves the resolution and doubles the channels, $x$ and $F(x)$ differ in shape.
# Option **A** subsamples $x$ and pads the new channels with zeros (no parameters; the paper's
# CIFAR nets); option **B** projects with a strided 1x1 convolution and batch norm (torchvision's
# `downsample`). Elsewhere both use the identity. The default run trains ResNet-14 (narrow, three
# seeds, 6 epochs on 1,000 images); the recorded full run ResNet-20 (20 epochs, 5,000 images, one
# seed).

# %%
sc = tv.models.PadShortcut(16, 32, stride=2)
print("option A on (1, 16, 32, 32):", sc(tv.randn(1, 16, 32, 32)).shape)
shortcuts = C.by_mode(dict(depth=14, widths=(8, 16, 32), seeds=(0, 1, 2), epochs=6, batch_size=32),
                      dict(depth=8, widths=(8, 16, 32), seeds=(0,), epochs=1, batch_size=32),
                      full=dict(depth=20, widths=(16, 32, 64), seeds=(0,), epochs=20, batch_size=128))
params = {o: C.params_count(C.cifar_resnet(shortcuts["depth"], widths=shortcuts["widths"], shortcut=o)) for o in "AB"}
print({f"shortcut {o}": f"{n:,} parameters" for o, n in params.items()})
sc_runs = train_runs({o: (lambda o=o: C.cifar_resnet(shortcuts["depth"], widths=shortcuts["widths"], shortcut=o))
                      for o in "AB"}, shortcuts["seeds"], shortcuts["epochs"], shortcuts["batch_size"])
C.record("03_shortcuts", dict(data=split.source, train_per_class=len(split.train) // 10,
                              test_per_class=len(split.test) // 10, **shortcuts, schedule="onecycle",
                              params=params, runs=sc_runs),
         "TINYVISION_FULL=1 python chapters/_execute.py 03_resnet")
C.say(compare(final(sc_runs, "test_error"), "B", "A", f"test error, ResNet-{shortcuts['depth']} ({C.MODE})"))
recorded = None if C.FULL else C.recorded("03_shortcuts")
if recorded:
    r = recorded["results"]
    print(C.recorded_label(recorded))
    print(f"recorded: parameters {r['params']};", compare(final(r["runs"], "test_error"), "B", "A",
          f"test error, ResNet-{r['depth']}, {r['epochs']} epochs"))

# %% [markdown]
# The projection adds parameters and computation (only at the two stage transitions here). On
# ImageNet, He et al. (2016, Table 3) measured a small gain for it: ResNet-34 top-1 error 25.03%
# with A, 24.52% with B, 24.19% with projections everywhere (C). They use A for the CIFAR nets and
# B (projections only where the shape changes) for the bottleneck ResNets, where projections
# everywhere would double the blocks' time and size (§4.1). Whether runs as short as the ones
# above separate A from B is what their verdicts say; a gain of half a point, the size of the
# paper's, could only show in runs whose seed spread (printed in the verdict) is smaller than
# that, and the recorded run has one seed.

# %% [markdown]
# ## Where the article is wrong
#
# - **"ResNet solved the vanishing and exploding gradient problem."** The ResNet paper says the
#   opposite: that problem "has been largely addressed by normalized initialization and
#   intermediate normalization layers", and residual learning addresses *degradation*: deeper
#   plain networks reaching a higher **training** error (He et al. 2016, "Deep Residual Learning
#   for Image Recognition", CVPR, §1 and §4.1, where they argue the plain nets' difficulty is
#   "unlikely to be caused by vanishing gradients"). For deep plain networks *with* batch norm,
#   Yang et al. (2019, "A Mean Field Theory of Batch Normalization", ICLR) prove the opposite of
#   vanishing: gradients that explode with depth at initialisation; the verdicts of 3.1 name
#   what this chapter's measurement shows.
# - **"Batch norm scales each batch's activations to a normal distribution with mean 0 and
#   standard deviation 1."** It standardises the mean and variance of each channel (feature) over
#   the mini-batch, then applies a learned scale $\gamma$ and shift $\beta$ (Ioffe & Szegedy 2015,
#   "Batch Normalization", ICML, Algorithm 1; the article's formula omits this step and the running
#   statistics used at inference, §3.1 there). The output's mean is $\beta$ and its standard
#   deviation about $\gamma$ (printed in 3.3), and because the map is affine per channel the
#   *shape* of the distribution is untouched: a skewed input stays exactly as skewed (Exercise 1).
#   Nothing makes it normal.
# - **"Batch norm alleviates vanishing and exploding gradients."** Ioffe & Szegedy motivated it
#   by reducing internal covariate shift; Santurkar et al. (2018, "How Does Batch Normalization
#   Help Optimization?", NeurIPS) show its benefit comes from a smoother loss landscape instead;
#   and in deep networks without shortcuts it *causes* gradient explosion at initialisation (Yang
#   et al. 2019; 3.1 measures that growth in plain networks with batch norm, with no
#   batch-norm-free network to compare).
# - **Gradient clipping "clips gradients larger than the threshold to the threshold range".**
#   That describes clipping each value, while the formula the article gives rescales the whole
#   vector by its global norm; the two differ in direction (measured in 3.3). Norm clipping is
#   from Pascanu et al. (2013, "On the difficulty of training recurrent neural networks", ICML).
# - **Gradient clipping and rotations as ResNet training techniques.** The ResNet paper trains
#   with SGD (momentum 0.9, weight decay $10^{-4}$, learning rate 0.1 divided by 10 on plateaus),
#   batch norm after every convolution, no dropout, no gradient clipping; its augmentation is
#   random crops and horizontal flips (plus scale and colour augmentation on ImageNet), no rotation
#   (He et al. 2016, §3.4 and §4.2).
# - **Two kinds of skip connection, "identity" and "additive, adding an identity mapping with
#   weight 1".** These are the same thing: every shortcut is added with weight 1. The paper's
#   distinction is identity (parameter-free, option A's zero padding where shapes change) against
#   projection shortcuts (1x1 convolutions, options B and C; §3.3, and §4.1 with Table 3; section
#   3.4 above).
# - **"ResNet has fewer parameters at the same model size."** A model's size *is* its parameter
#   count. The paper's facts: identity shortcuts add no parameters, so a ResNet has exactly the
#   parameters of its plain counterpart (in this chapter `plain=True` removes only the
#   parameter-free option-A shortcuts, so plain ResNet-20 has the 269,722 parameters the summary
#   in 3.2 prints), and ResNet-34 needs 3.6 billion FLOPs, 18% of VGG-19's 19.6
#   billion (§3.3); ResNet-152 (11.3 billion) is still cheaper than VGG-16 (15.3 billion).
# - **The architecture diagram** ("conv1 -> residual blocks -> output layer") leaves out the
#   global average pooling between the last block and the classifier (§3.3), which is what lets
#   the same network take other image sizes.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Predict before you compute where the exercise asks for a prediction. Solutions:
# `chapters/solutions/03_resnet.py`; the checks: `chapters/checks/ch03.py`.

# %%
from checks import ch03 as check

# %% [markdown]
# ### Exercise 1: does batch norm make activations normal? (predict)
# `x` below has 512 values in each of 4 channels, drawn from an exponential distribution: a
# strongly skewed one (a normal distribution has skewness 0). Predict the skewness of channel 0 of
# `tv.nn.BatchNorm1d(4)(x)` in training mode, with $\gamma = 1.5$, $\beta = 0.3$ for that channel.
# Write your prediction as a number before you run anything.

# %%
x = check.skewed_batch()
print("skewness of the input, per channel:", check.skewness(x).round(3))
bn_output_skewness = None      # your prediction: a number

# %%
check.bn_output_skewness(bn_output_skewness)

# %% [markdown]
# ### Exercise 2: the bottleneck's parameters (predict)
# ResNet-50's first stage stacks bottleneck blocks with 256 channels in and out and 64 inside:
# `tv.models.Bottleneck(256, 64)` (1x1 conv 256 -> 64, 3x3 conv 64 -> 64, 1x1 conv 64 -> 256, each
# followed by batch norm, identity shortcut). Count its parameters by hand.

# %%
bottleneck_params = None       # your count: an integer

# %%
check.bottleneck_params(bottleneck_params)

# %% [markdown]
# ### Exercise 3: batch norm's backward pass for images (implement)
# Section 3.3 derived the backward pass for features $(N, D)$. Write it for images
# $(N, C, H, W)$, where the statistics of channel $c$ run over the batch and both spatial axes:
# return `(dx, dgamma, dbeta)` with shapes $(N, C, H, W)$, $(C,)$, $(C,)$, given the upstream
# gradient `grad`, the input `x`, `gamma` of shape $(C,)$ and `eps`. The check makes your function
# the backward pass of a tinyvision `Function` (forward: batch norm in training mode) and runs
# `tv.gradcheck` on $x$, $\gamma$ and $\beta$.

# %%
def batch_norm_backward(grad, x, gamma, eps):
    """(dL/dx, dL/dgamma, dL/dbeta) of training-mode batch norm over axes (0, 2, 3)."""
    return None                # your code

# %%
check.batch_norm_backward(batch_norm_backward)

# %% [markdown]
# ### Exercise 4: a pre-activation bottleneck block (build)
# Combine the two blocks of this chapter: a bottleneck (1x1 convolution to a quarter of the
# channels, 3x3, 1x1 back) in the pre-activation order (batch norm and ReLU *before* each
# convolution, nothing after the addition, identity shortcut), from `tv.nn` layers
# (`BatchNorm2d`, `ReLU`, `Conv2d(..., bias=False)`). `preact_bottleneck(channels)` returns the
# block as a `tv.nn.Module`. The check builds one with 16 channels and tests its shape, its
# parameter count (predict it first), that $y = x$ exactly when every convolution's weights are
# zero, and `tv.gradcheck` on its backward pass.

# %%
def preact_bottleneck(channels):
    """A tv.nn.Module: y = x + F(x), F = BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1."""
    return None                # your code

# %%
check.preact_bottleneck(preact_bottleneck)
