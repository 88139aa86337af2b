# %% [markdown]
# # Chapter 7 · Outlook and challenges (未来展望与挑战)
#
# Two of the article's themes, made measurable on a small scale: the compute (and energy) that
# accuracy costs, and model compression to make models cheaper to deploy.

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
# ## 7.1 Trends (计算机视觉预训练模型的发展趋势): compute and energy against accuracy
#
# Training compute is roughly $3 \times$ (forward MACs per image) $\times$ (images seen) multiply-adds:
# the backward pass costs about twice the forward. Energy is measured here as CPU time times an
# *assumed* power draw; set `WATTS` to your machine's figure (the default is a guess for a laptop-class
# 2-core CPU, not a measurement).

# %%
WATTS = 15.0
split = C.load_data(train_per_class=40 if QUICK else 2000, test_per_class=20 if QUICK else 300)
C.describe(split)
entries = [("resnet8 (narrow)", lambda: C.cifar_resnet(8, widths=(8, 16, 32)), "resnet_sgd"),
           ("vit_cifar_tiny", lambda: tv.models.create("vit_cifar_tiny"), "vit_adamw")]
if not QUICK:   # QUICK mode keeps to the two smallest models
    entries += [("resnet20", lambda: tv.models.create("resnet20"), "resnet_sgd"),
                ("vit_cifar_small", lambda: tv.models.create("vit_cifar_small"), "vit_adamw")]
budget = []
trained = {}
for name, build, recipe in entries:
    tv.manual_seed(0)
    model = build()
    macs = tv.summary(model, (1, 3, 32, 32), verbose=False).total_macs
    cpu0 = time.process_time()
    hist = C.fit(model, split, recipe, epochs=2 if QUICK else 8, batch_size=32 if QUICK else 128,
                 verbose=False, warmup_epochs=0 if QUICK else None)
    cpu = time.process_time() - cpu0
    batch = 32 if QUICK else 128
    seen = len(split.train) // batch * batch * len(hist)        # drop_last: whole batches per epoch
    flops = 2 * 3 * macs * seen                                   # 1 MAC = 2 floating-point operations
    budget.append((name, macs, flops, cpu, cpu * WATTS, hist[-1]["test_acc"]))
    trained[name] = model
    print(f"{name:18s} {macs / 1e6:6.2f} MMACs/img  {flops / 1e12:7.3f} TFLOP  cpu {cpu:6.1f} s  "
          f"~{cpu * WATTS / 3600:.4f} Wh  test acc {hist[-1]['test_acc']:.3f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for name, macs, flops, cpu, joules, acc in budget:
    axes[0].scatter(flops, acc); axes[0].annotate(name, (flops, acc), fontsize=8)
    axes[1].scatter(joules, acc); axes[1].annotate(name, (joules, acc), fontsize=8)
axes[0].set_xscale("log"); axes[0].set_xlabel("training FLOPs"); axes[1].set_xlabel(f"energy (J, at {WATTS} W assumed)")
for ax in axes: ax.set_ylabel("test accuracy"); ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 7.2 Challenges (预训练模型在计算机视觉中的挑战) and 7.3 research directions (未来研究方向)
#
# Deployment asks for smaller, cheaper models. Two compression methods, applied after training
# to the ResNet trained above (ResNet-20; the narrow ResNet-8 in QUICK mode), each with its accuracy
# cost on the test set:
#
# * **magnitude pruning**: set the fraction $s$ of convolution and linear weights with the smallest
#   $|w|$ (over the whole network) to zero. Batch-norm parameters are kept;
# * **int8 post-training quantisation** of the weights: per output channel, $q = \mathrm{round}(w / \Delta)$
#   clipped to $[-127, 127]$ with $\Delta = \max|w| / 127$, then $w \approx q\Delta$ (simulated: the
#   arithmetic stays float32, the stored weights shrink 4x).

# %%
from tinyvision import metrics
model = trained["resnet8 (narrow)" if QUICK else "resnet20"]
original = {k: v.copy() for k, v in model.state_dict().items()}
weights = [name for name, p in model.named_parameters() if p.ndim >= 2]     # conv and linear weights

def accuracy_now():
    logits, targets = C.evaluate(model, split.test)
    return metrics.accuracy(logits, targets)

def restore():
    model.load_state_dict(original)

def replace_weights(new):
    # load_state_dict copies NumPy arrays onto the model's device (CPU or GPU)
    model.load_state_dict(new, strict=False)

base = accuracy_now()
sparsities = [0.0, 0.5, 0.8, 0.9] if QUICK else [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
dense = {n: tv.backend.to_numpy(original[n]) for n in weights}     # the float32 snapshot, on the host
magnitudes = np.concatenate([np.abs(w).ravel() for w in dense.values()])
pruned = []
for s in sparsities:
    threshold = np.quantile(magnitudes, s) if s > 0 else -1
    replace_weights({n: np.where(np.abs(w) <= threshold, 0, w) for n, w in dense.items()})
    pruned.append(accuracy_now())
    print(f"sparsity {s:.2f}: test accuracy {pruned[-1]:.3f} (dense {base:.3f})")

size_fp32 = sum(w.size * 4 for w in dense.values())
dequantised = {}
for n, w in dense.items():
    scale = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    dequantised[n] = q.astype(np.float32) * scale
replace_weights(dequantised)
int8_acc = accuracy_now()
size_int8 = sum(w.size + w.shape[0] * 4 for w in dense.values())      # int8 values + one fp32 scale per row
print(f"int8 weights: test accuracy {int8_acc:.3f} (float32 {base:.3f}); weight storage "
      f"{size_fp32 / 1024:.0f} KiB -> {size_int8 / 1024:.0f} KiB")
restore()

plt.plot(sparsities, pruned, marker="o", label="magnitude pruning")
plt.axhline(int8_acc, color="tab:orange", ls="--", label="int8 weights")
plt.axhline(base, color="gray", ls=":", label="float32")
plt.xlabel("fraction of weights set to zero"); plt.ylabel("test accuracy"); plt.legend(); plt.grid(alpha=0.3); plt.show()

# %% [markdown]
# Pruning without fine-tuning costs little at moderate sparsity and collapses at high sparsity;
# pruning followed by a few epochs of retraining recovers much of the loss (not done here).
# Unstructured zeros only save time with sparse kernels; structured pruning (whole channels) and
# int8 arithmetic are what make CPUs faster in practice. The article's further directions
# (self-supervised pretraining, efficiency, robustness, interpretability) appear elsewhere in
# tinyvision: `tinyvision.transfer` (masked-autoencoder, rotation and patch-position pretext tasks)
# and the attention maps of chapter 2.
