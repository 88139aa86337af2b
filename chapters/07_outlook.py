# %% [markdown]
# # Chapter 7 · Outlook and challenges (未来展望与挑战)
#
# Two of the article's themes, made measurable on a small scale: the compute (and energy) that
# accuracy costs, and model compression to make models cheaper to deploy. After each experiment
# a cell turns its numbers into a verdict.
#
# **Run modes.** By default the chapter trains two small models on 10,000 CIFAR-10 images and runs
# in a few minutes on a 2-core CPU (the executed copy's stamp gives one run's time); beside each
# live run it shows the results of the **full** run (four models, ResNet-20 among them, on 20,000
# images, 76 minutes on one core), kept in `docs/results/chapters/07_*.json`. `TINYVISION_FULL=1`
# reruns the full experiments (and records them); `TINYVISION_QUICK=1` is continuous integration's
# smoke test, whose numbers measure nothing.

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
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
# ## 7.1 Trends (计算机视觉预训练模型的发展趋势): compute and energy against accuracy
#
# Training compute is about $6 \times$ (forward multiply-adds per image) $\times$ (images seen)
# floating-point operations: a multiply-add is 2 FLOPs, and the backward pass costs about twice the
# forward. Energy is estimated as CPU time times an *assumed* power draw; set `WATTS` to your
# machine's figure (the default is a guess for a laptop-class 2-core CPU, not a measurement).
# Default mode trains a narrow ResNet-8 (8, 16 and 32 channels; 19k parameters) and `vit_cifar_tiny`
# (75k) for 8 epochs on 10,000 images; the full run adds ResNet-20 and `vit_cifar_small` (1.8M) on
# 20,000.

# %%
WATTS = 15.0
split = C.load_data(train_per_class=C.by_mode(1000, 40, full=2000), test_per_class=C.by_mode(300, 20, full=300))
C.describe(split)
entries = [("resnet8 (narrow)", lambda: C.cifar_resnet(8, widths=(8, 16, 32)), "resnet_sgd"),
           ("vit_cifar_tiny", lambda: tv.models.create("vit_cifar_tiny"), "vit_adamw")]
if C.MODE == "full":          # the larger pair only in full mode: ResNet-20 alone takes 23 CPU minutes
    entries += [("resnet20", lambda: tv.models.create("resnet20"), "resnet_sgd"),
                ("vit_cifar_small", lambda: tv.models.create("vit_cifar_small"), "vit_adamw")]
epochs, batch = C.by_mode(8, 2), C.by_mode(128, 32)
compute, trained = [], {}
for name, build, recipe in entries:
    tv.manual_seed(0)
    model = build()
    macs = tv.summary(model, (1, 3, 32, 32), verbose=False).total_macs
    cpu0 = time.process_time()
    hist = C.fit(model, split, recipe, epochs=epochs, batch_size=batch, verbose=False,
                 warmup_epochs=C.by_mode(None, 0))
    cpu = time.process_time() - cpu0
    seen = len(split.train) // batch * batch * len(hist)         # drop_last: whole batches per epoch
    compute.append(dict(name=name, macs=macs, flops=6 * macs * seen, cpu_s=cpu, test_acc=hist[-1]["test_acc"]))
    trained[name] = model
    C.say(f"{name:18s} {macs / 1e6:6.2f} MMACs/img  {6 * macs * seen / 1e12:7.3f} TFLOP  cpu {cpu:6.1f} s  "
          f"~{cpu * WATTS / 3600:.4f} Wh  test acc {hist[-1]['test_acc']:.3f}")
C.record("07_compute", dict(train_images=len(split.train), test_images=len(split.test), epochs=epochs,
                            batch_size=batch, models=compute),
         "TINYVISION_FULL=1 python chapters/_execute.py 07_outlook")

# %%
def plot_compute(axes, rows, label):
    for r in rows:
        for ax, x in zip(axes, (r["flops"], r["cpu_s"] * WATTS)):
            ax.scatter(x, r["test_acc"], marker="o" if label == "this run" else "s",
                       color="tab:blue" if label == "this run" else "tab:orange")
            ax.annotate(r["name"], (x, r["test_acc"]), fontsize=8)
    axes[0].scatter([], [], marker="o" if label == "this run" else "s",
                    color="tab:blue" if label == "this run" else "tab:orange", label=label)


def compute_verdicts(rows, n_test):
    """Which models are beaten on both accuracy (beyond twice the standard error of a difference)
    and training FLOPs, and whether FLOPs order the models as their CPU time does."""
    for a in rows:
        for b in rows:
            d = a["test_acc"] - b["test_acc"]
            noise = 2 * np.sqrt((a["test_acc"] * (1 - a["test_acc"]) + b["test_acc"] * (1 - b["test_acc"])) / n_test)
            if d > noise and a["flops"] < b["flops"]:
                print(f"   {a['name']} beats {b['name']} by {d * 100:.1f} points with {b['flops'] / a['flops']:.1f}x fewer FLOPs")
    rates = {r["name"]: r["flops"] / r["cpu_s"] / 1e9 for r in rows}
    same_order = [r["name"] for r in sorted(rows, key=lambda r: r["flops"])] == [r["name"] for r in sorted(rows, key=lambda r: r["cpu_s"])]
    print(f"   FLOPs per CPU second: " + ", ".join(f"{n} {v:.1f} G" for n, v in rates.items()) +
          f"; FLOPs {'order the models as CPU time does' if same_order else 'do NOT order the models as CPU time does'}")


rec = C.recorded("07_compute")
show_rec = rec is not None and C.MODE != "full"
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_compute(axes, compute, "this run")
if show_rec:
    plot_compute(axes, rec["results"]["models"], "full run (recorded)")
axes[0].set_xscale("log"); axes[0].set_xlabel("training FLOPs"); axes[1].set_xscale("log")
axes[1].set_xlabel(f"energy (J, CPU time x {WATTS} W assumed)")
for ax in axes:
    ax.set_ylabel("test accuracy"); ax.grid(alpha=0.3)
axes[0].legend(fontsize=8); plt.tight_layout(); plt.show()
C.say("verdicts (this run):")
compute_verdicts(compute, len(split.test))
if show_rec:
    print("verdicts (full run):", C.recorded_label(rec))
    compute_verdicts(rec["results"]["models"], rec["results"]["test_images"])

# %% [markdown]
# ## 7.2 Challenges (预训练模型在计算机视觉中的挑战) and 7.3 research directions (未来研究方向)
#
# Deployment asks for smaller, cheaper models. Two compression methods, applied after training to
# the ResNet trained above (the narrow ResNet-8 by default, ResNet-20 in full mode), each with its
# accuracy cost on the test set:
#
# * **magnitude pruning**: set the fraction $s$ of convolution and linear weights with the smallest
#   $|w|$ (over the whole network) to zero. Batch-norm parameters are kept;
# * **int8 post-training quantisation** of the weights: per output channel, $q = \mathrm{round}(w / \Delta)$
#   clipped to $[-127, 127]$ with $\Delta = \max|w| / 127$, then $w \approx q\Delta$ (simulated: the
#   arithmetic stays float32, the stored weights shrink almost 4x: one byte instead of four per
#   weight, plus one float32 scale per output channel). Rounding moves each weight by at most
#   $\Delta / 2$.
#
# Both are compared with the dense model **on the same test images**, so the noise of a change is
# that of a paired difference: if $m$ images change from right to wrong or back, its standard
# error is about $\sqrt{m}/n$. A change counts when it exceeds twice that.

# %%
from tinyvision import metrics
res_name = C.by_mode("resnet8 (narrow)", "resnet8 (narrow)", full="resnet20")
model = trained[res_name]
original = {k: v.copy() for k, v in model.state_dict().items()}
weights = [name for name, p in model.named_parameters() if p.ndim >= 2]     # conv and linear weights
dense = {n: tv.backend.to_numpy(original[n]) for n in weights}              # the float32 snapshot, on the host


def correct_now(net=model):
    """Per test image: does the model classify it correctly?"""
    logits, targets = C.evaluate(net, split.test)
    return np.argmax(logits, axis=1) == targets


def paired_verdict(base, new, what):
    """The accuracy change from ``base`` to ``new`` (boolean arrays over the same images) and
    whether it exceeds twice its paired standard error sqrt(changed images) / n."""
    d, noise = new.mean() - base.mean(), 2 * np.sqrt((base != new).sum()) / len(base)
    return d, noise, (f"{what}: {new.mean():.3f} vs dense {base.mean():.3f}, " +
                      (f"no change beyond the noise ({noise:.3f})" if abs(d) <= noise else
                       f"{'loses' if d < 0 else 'gains'} {abs(d) * 100:.1f} points (noise {noise:.3f})"))


def load_weights(new):
    # load_state_dict copies NumPy arrays onto the model's device (CPU or GPU)
    model.load_state_dict(new, strict=False)


base = correct_now()
sparsities = C.by_mode([0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95], [0.0, 0.5, 0.9])
magnitudes = np.concatenate([np.abs(w).ravel() for w in dense.values()])
pruned, harmless = [], []
for s in sparsities:
    threshold = np.quantile(magnitudes, s) if s > 0 else -1
    load_weights({n: np.where(np.abs(w) <= threshold, 0, w) for n, w in dense.items()})
    now = correct_now()
    pruned.append(now.mean())
    d, noise, line = paired_verdict(base, now, f"sparsity {s:.2f}")
    harmless.append(d >= -noise)
    C.say(line)
safe = [s for i, s in enumerate(sparsities) if all(harmless[:i + 1])]
C.say(f"verdict: up to sparsity {max(safe):.2f} (of those tried) pruning costs no accuracy beyond the noise"
      + (f"; at {sparsities[len(safe)]:.2f} it does" if len(safe) < len(sparsities) else ""))

# %% [markdown]
# ### Pruning, then training again
# Pruned weights can be compensated by the rest: train the pruned network for one more epoch with a
# small learning rate while holding its zeros, by multiplying each weight with its 0/1 mask before
# every forward pass (the weights are projected back onto the pruned set after each step).

# %%
class Masked(tv.nn.Module):
    """``model`` with its zero weights held at zero: before every forward pass each weight is
    multiplied by its mask, 1 where the weight was nonzero at construction, else 0."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.masks = [(p, (p.data != 0).astype(p.data.dtype)) for name, p in model.named_parameters() if p.ndim >= 2]

    def apply_masks(self):
        for p, mask in self.masks:
            p.data *= mask

    def forward(self, x):
        self.apply_masks()
        return self.model(x)


finetuned = {}
for s in C.by_mode([0.5, 0.7], [0.5]):
    model.load_state_dict(original)                # each sparsity from the trained model, not the last run's
    threshold = np.quantile(magnitudes, s)
    load_weights({n: np.where(np.abs(w) <= threshold, 0, w) for n, w in dense.items()})
    before = correct_now()
    held = Masked(model)
    C.fit(held, split, "resnet_sgd", epochs=1, batch_size=batch, lr=0.02, verbose=False)
    held.apply_masks()                             # the last step's update, projected too
    after = correct_now()
    zeros = sum(int((tv.backend.to_numpy(p.data) == 0).sum()) for p, _ in held.masks) / magnitudes.size
    finetuned[s] = after.mean()
    d, noise, line = paired_verdict(base, after, f"sparsity {s:.2f} after one epoch of training ({zeros:.0%} zeros)")
    cost, cost_noise, _ = paired_verdict(base, before, "")
    C.say(f"{line}; pruned, before training: {before.mean():.3f}; " +
          (f"training recovered {(after.mean() - before.mean()) * 100:+.1f} of the {-cost * 100:.1f} points pruning cost"
           if -cost > cost_noise else "pruning alone had cost no accuracy beyond the noise"))
model.load_state_dict(original)

# %% [markdown]
# ### int8 weights

# %%
size_fp32 = sum(w.size * 4 for w in dense.values())
dequantised, worst = {}, 0.0
for n, w in dense.items():
    scale = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    dequantised[n] = q.astype(np.float32) * scale
    worst = max(worst, float((np.abs(w - dequantised[n]) / (scale / 2)).max()))
load_weights(dequantised)
int8_correct = correct_now()
model.load_state_dict(original)
size_int8 = sum(w.size + w.shape[0] * 4 for w in dense.values())      # int8 values + one fp32 scale per row
C.say(f"largest rounding error: {worst:.4f} x (Delta / 2): the bound |w - q Delta| <= Delta / 2 "
      f"{'holds' if worst <= 1 + 1e-3 else 'is VIOLATED'}")
C.say(paired_verdict(base, int8_correct, "int8 weights")[2] +
      f"; weight storage {size_fp32 / 1024:.0f} KiB -> {size_int8 / 1024:.0f} KiB ({size_fp32 / size_int8:.1f}x smaller)")
C.record("07_compression", dict(model=res_name, test_images=len(split.test), dense_acc=base.mean(), sparsity=sparsities,
                                pruned_acc=pruned, int8_acc=int8_correct.mean(), finetuned=finetuned,
                                weight_kib_fp32=round(size_fp32 / 1024), weight_kib_int8=round(size_int8 / 1024)),
         "TINYVISION_FULL=1 python chapters/_execute.py 07_outlook")

# %%
def plot_compression(ax, r, title):
    ax.plot(r["sparsity"], r["pruned_acc"], marker="o", label="magnitude pruning")
    tuned = r.get("finetuned") or {}
    if tuned:
        ax.scatter([float(s) for s in tuned], list(tuned.values()), color="tab:green", zorder=3,
                   label="pruned + 1 epoch of training")
    ax.axhline(r["int8_acc"], color="tab:orange", ls="--", label="int8 weights")
    ax.axhline(r["dense_acc"], color="gray", ls=":", label="float32")
    ax.set_xlabel("fraction of weights set to zero"); ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8); ax.grid(alpha=0.3); ax.set_title(title, fontsize=9)


rec = C.recorded("07_compression")
show_rec = rec is not None and C.MODE != "full"
fig, axes = plt.subplots(1, 2 if show_rec else 1, figsize=(11 if show_rec else 6, 4), squeeze=False)
plot_compression(axes[0, 0], dict(sparsity=sparsities, pruned_acc=pruned, finetuned=finetuned,
                                  int8_acc=int8_correct.mean(), dense_acc=base.mean()), f"this run: {res_name}")
if show_rec:
    r = rec["results"]
    plot_compression(axes[0, 1], r, f"full run: {r['model']}\n{rec['date']}, {rec['machine'][:40]}")
plt.tight_layout(); plt.show()
if show_rec:
    r = rec["results"]
    noise = 2 * np.sqrt(2 * r["dense_acc"] * (1 - r["dense_acc"]) / r["test_images"])   # unpaired: an upper bound
    within = [s for s, a in zip(r["sparsity"], r["pruned_acc"]) if r["dense_acc"] - a <= noise]
    print(f"verdict (full run, {r['model']}): pruning up to {max(within):.2f} of the weights stays within "
          f"{noise:.3f} of the dense {r['dense_acc']:.3f}, 0.70 leaves {r['pruned_acc'][r['sparsity'].index(0.7)]:.3f}; "
          f"int8 {r['int8_acc']:.3f} ({'within' if abs(r['int8_acc'] - r['dense_acc']) <= noise else 'beyond'} the noise), "
          f"{r['weight_kib_fp32']} -> {r['weight_kib_int8']} KiB. {C.recorded_label(rec)}")

# %% [markdown]
# Unstructured zeros save memory (stored sparsely) but time only with sparse kernels; structured
# pruning (whole channels) and int8 arithmetic are what make CPUs faster in practice. The article's
# further directions appear elsewhere in tinyvision: self-supervised pretraining in
# `tinyvision.transfer` (masked-autoencoder, rotation and patch-position pretext tasks;
# `python -m tinyvision pretrain`), and what a ViT attends to in chapter 2.

# %% [markdown]
# ## Where the article is wrong
#
# * **"Google's BERT and OpenAI's GPT are pretrained models of trillions of parameters" (7.1).**
#   BERT-Large has 340 million parameters (Devlin et al., NAACL 2019), GPT-2 1.5 billion (Radford et
#   al. 2019) and GPT-3 175 billion (Brown et al., NeurIPS 2020). Models of over a trillion
#   parameters exist (Switch Transformer, 1.6 trillion, Fedus et al., JMLR 2022), but they are sparse
#   mixtures of experts, neither BERT nor GPT. (Exercise 4 computes what GPT-3's training cost.)
# * **"ViT achieved efficient image processing" (7.1).** Attention's cost grows with the square of
#   the number of tokens (chapter 4, exercise 3), and the ViT paper's efficiency result is about
#   pretraining on JFT-300M (Dosovitskiy et al., ICLR 2021, §4.4). At this chapter's scale the full
#   run measured the opposite: `vit_cifar_small` used 3.1x ResNet-20's training FLOPs and finished
#   16 points less accurate (recorded results above).
# * **"Google's Speech-to-Text, combining text and audio, is an example of multimodal pretraining"
#   (7.1).** Speech recognition maps one modality to another; multimodal pretraining in vision
#   learns one representation from paired modalities, e.g. CLIP from 400 million image-text pairs
#   (Radford et al., ICML 2021) or ALIGN from 1.8 billion (Jia et al., ICML 2021).
# * **"Distributed training improves energy efficiency" (7.2).** Spreading training over more
#   devices shortens the wall time; it does not reduce the operations and adds communication, so
#   energy per run does not fall. What lowers it are fewer operations (smaller or sparser models,
#   lower precision, as measured above) and more efficient hardware and data centres (Patterson et
#   al., "Carbon Emissions and Large Neural Network Training", arXiv:2104.10350, 2021).
# * **"Model compression improves generalisation" (7.3, as a means of adaptive pretraining).**
#   Compression aims at size and speed, and at best keeps the accuracy: in the verdicts above,
#   int8 weights and light pruning stay within the noise of the dense model rather than above it,
#   and heavier pruning without retraining costs accuracy (70% of ResNet-20's weights took it from
#   0.736 to 0.396 in the full run). Its aim is cost, not generalisation.
# * **"Interactive pretraining with human feedback" (7.3).** Learning from human feedback (Christiano
#   et al., NeurIPS 2017; InstructGPT, Ouyang et al., NeurIPS 2022) fine-tunes a model *after*
#   pretraining, which stays self-supervised on unlabelled data: it is not a form of pretraining.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Solutions: `chapters/solutions/07_outlook.py`; the checks: `chapters/checks/ch07.py`.

# %%
from checks import ch07 as check

# %% [markdown]
# ### Exercise 1: layer-wise magnitude pruning
# The pruning above uses one threshold for the whole network, so each layer loses a different
# fraction of its weights (more where its weights are small). Write the layer-wise variant: given a
# dict of weight arrays and a sparsity $s$, return a new dict in which each array has its own
# $\mathrm{round}(s \cdot n)$ smallest-magnitude entries (of its $n$) set to zero and the others
# unchanged. Then predict: at 70% sparsity, would it hurt the ResNet above more or less than the
# global threshold did? (Try it with `load_weights`.)

# %%
def layerwise_prune(weights, sparsity):
    """{name: array} -> {name: array with its round(sparsity * size) smallest |w| set to 0}."""
    return None          # your code

# %%
check.layerwise_prune(layerwise_prune)

# %% [markdown]
# ### Exercise 2: int8 quantisation with one scale per tensor
# Above, each output channel has its own scale. Write the simplest symmetric scheme: one scale for
# the whole tensor, $\Delta = \max|w| / 127$, $q = \mathrm{round}(w / \Delta)$ as `np.int8`. Return
# `(q, scale)`. The check tests the range, the dtype, and the bound $|w - q\Delta| \le \Delta/2$ on
# tensors with and without an outlier.

# %%
def quantize_per_tensor(w):
    """Symmetric int8 quantisation of w with one scale: returns (q: int8 array, scale: float)."""
    return None          # your code

# %%
check.quantize_per_tensor(quantize_per_tensor)

# %% [markdown]
# ### Exercise 3: the size of the rounding error (predict)
# The bound $\Delta/2$ is the worst case. If the weights fall anywhere within a step, the rounding
# error is spread evenly over $[-\Delta/2, \Delta/2]$. Predict the root-mean-square rounding error
# of int8 quantisation for a channel whose largest weight has magnitude 0.2 (a number; the check then
# measures it on 100,000 normally distributed weights).

# %%
int8_rms_error = None     # your prediction

# %%
check.int8_rms_error(int8_rms_error)

# %% [markdown]
# ### Exercise 4: what GPT-3 cost (the 6ND rule)
# Training a dense model of $N$ parameters on $D$ tokens takes about $6ND$ FLOPs, for the same reason
# as the $6 \times$ MACs $\times$ images above (each parameter does one multiply-add per token
# forward, two backward). GPT-3 has 175 billion parameters and was trained on 300 billion tokens
# (Brown et al. 2020). Compute its training FLOPs.

# %%
gpt3_training_flops = None     # your answer

# %%
check.gpt3_training_flops(gpt3_training_flops)
