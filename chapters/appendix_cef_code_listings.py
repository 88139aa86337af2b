# %% [markdown]
# # Appendices C, E, F · The article's code listings, explained and corrected (附录 C / E / F)
#
# The article's appendices show PyTorch code for a ViT classifier, a ResNet, gradient clipping and
# batch normalisation (F repeats C with commentary). Several listings do not run or do something else
# than the text says. For each: what goes wrong, a corrected PyTorch version (shown, not executed:
# PyTorch is not a dependency here), and working tinyvision code, which is executed.

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
# ## C.1 / F.1 The ViT listing (ViT模型实现代码)
#
# The listing wraps `torchvision.models.vit_b_16(pretrained=True)` as an encoder, builds
# `nn.Linear(self.encoder.num_features, num_classes)` and classifies `x.mean([2, 3])`. Problems:
#
# 1. torchvision's `VisionTransformer` has **no `num_features` attribute** (its width is `hidden_dim`,
#    768), so the constructor raises `AttributeError`.
# 2. `vit_b_16(...)` returns **class logits of shape (B, 1000)**, not a feature map: there are no axes
#    2 and 3 to average, so `mean([2, 3])` fails; and a classifier stacked on ImageNet logits would
#    discard the features the head was meant to read.
# 3. `pretrained=True` is deprecated in torchvision (≥ 0.13) in favour of `weights=...`.
#
# A corrected PyTorch version replaces the pretrained head by the identity, so the encoder returns the
# class token's 768 features:
#
# ```python
# import torch.nn as nn
# from torchvision.models import vit_b_16, ViT_B_16_Weights
#
# class ViTClassifier(nn.Module):
#     def __init__(self, num_classes):
#         super().__init__()
#         self.encoder = vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1)
#         width = self.encoder.hidden_dim          # 768
#         self.encoder.heads = nn.Identity()       # encoder(x) -> (B, 768), the class token
#         self.classifier = nn.Linear(width, num_classes)
#
#     def forward(self, x):                        # x: (B, 3, 224, 224)
#         return self.classifier(self.encoder(x))
# ```
#
# In tinyvision a model built with `num_classes=0` returns pooled features and does have
# `num_features`; `tv.models.load_pretrained` maps torchvision's parameter names if you have the weights.

# %%
class ViTClassifier(tv.nn.Module):
    def __init__(self, num_classes, backbone="vit_cifar_tiny"):
        super().__init__()
        self.encoder = tv.models.create(backbone, num_classes=0)     # features, not logits
        self.classifier = tv.nn.Linear(self.encoder.num_features, num_classes)

    def forward(self, x):
        return self.classifier(self.encoder(x))                       # encoder(x): (B, D)

model = ViTClassifier(num_classes=7)
x = tv.randn(2, 3, 32, 32)
print("features:", model.encoder(x).shape, " logits:", model(x).shape)
big = tv.models.create("vit_base_patch16_224", num_classes=0)
print("ViT-B/16 feature width:", big.num_features, f"({C.params_count(big):,} parameters without a head)")
print("torchvision name -> tinyvision name:",
      tv.models.torchvision_vit_to_timm("encoder.layers.encoder_layer_0.self_attention.in_proj_weight"))

# %% [markdown]
# ## C.2 / F.2 The ResNet listing (ResNet模型实现代码)
#
# The class itself follows torchvision's ResNet, but it is instantiated as
# `ResNet(models.resnet18, [2, 2, 2, 2])`: **`models.resnet18` is a function that builds a whole
# network, not a block class**. `_make_layer` then reads `block.expansion` (a function has no such
# attribute: `AttributeError`), and would call `block(in_channels, out_channels, stride, downsample)`
# expecting one residual block. The listing also never defines a block class. The fix is to pass a
# block class such as torchvision's `BasicBlock`:
#
# ```python
# from torchvision.models.resnet import BasicBlock
# model = ResNet(BasicBlock, [2, 2, 2, 2])          # ResNet-18
# ```
#
# The same mistake in tinyvision, and the corrected call. tinyvision builds the first block before
# it reads `expansion`, so there the mistake surfaces as a `TypeError` (the function called with a
# block's arguments) rather than torchvision's `AttributeError`; either way the listing cannot run.

# %%
try:
    tv.models.ResNet(tv.models.resnet18, (2, 2, 2, 2))
except Exception as err:
    print("passing a model constructor as the block:", type(err).__name__, err)

mine = tv.models.ResNet(tv.models.BasicBlock, (2, 2, 2, 2), num_classes=1000)
ref = tv.models.create("resnet18", num_classes=1000)
print(f"ResNet(BasicBlock, (2, 2, 2, 2)): {C.params_count(mine):,} parameters; resnet18: {C.params_count(ref):,}")
print("same parameter names:", list(mine.state_dict()) == list(ref.state_dict()))
with tv.no_grad():
    print("forward on a 224x224 image:", mine.eval()(tv.randn(1, 3, 224, 224)).shape)

# %% [markdown]
# ## E.1 The gradient-clipping listing (梯度裁剪)
#
# The listing sets `clip_value = 1.0`, computes `torch.autograd.grad(model.loss, model.parameters(),
# create_graph=True)`, and then loops `param.grad.data = torch.clamp(param.grad.data, -clip_value, clip_value)`.
# Problems:
#
# 1. `model.loss` is not an attribute of a PyTorch module; the loss is a tensor computed from the
#    model's output.
# 2. The gradients returned by `autograd.grad` are stored in `gradient` and **never used**;
#    `autograd.grad` does not fill `param.grad`, which stays `None` (so `.data` fails) unless
#    `backward()` ran before. `create_graph=True` builds a graph for second derivatives for nothing.
# 3. Most importantly, `clamp` clips each **value** into [-1, 1], while the formula in §3.3 rescales the
#    whole gradient when its **L2 norm** exceeds the threshold. Value clipping changes the gradient's
#    direction; norm clipping only its length.
#
# Corrected PyTorch, matching the formula:
#
# ```python
# loss = criterion(model(x), y)
# optimizer.zero_grad()
# loss.backward()
# torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # the formula of section 3.3
# optimizer.step()
# ```
#
# tinyvision has both under PyTorch's names; the difference on a real gradient:

# %%
model = C.cifar_resnet(8, widths=(8, 16, 32))
x = tv.randn(16, 3, 32, 32)
y = tv.tensor(np.random.default_rng(0).integers(0, 10, 16))

def gradient():
    model.zero_grad()
    tv.nn.functional.cross_entropy(model(x), y).backward()
    return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])

g = gradient()
max_norm = 0.5 * np.linalg.norm(g)
tv.optim.clip_grad_norm_(model.parameters(), max_norm)
g_norm = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
gradient()
tv.optim.clip_grad_value_(model.parameters(), 0.1 * np.abs(g).max())
g_value = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
formula = g * min(1.0, max_norm / np.linalg.norm(g))
cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
angle = lambda a, b: np.degrees(np.arccos(np.clip(cos(a, b), -1.0, 1.0)))
print(f"norm clipping:  |g| {np.linalg.norm(g):.4f} -> {np.linalg.norm(g_norm):.4f}, matches the formula: "
      f"{np.allclose(g_norm, formula, atol=1e-6)}, cos(g, clipped) = {cos(g, g_norm):.4f}")
print(f"value clipping: |g| -> {np.linalg.norm(g_value):.4f}, cos(g, clipped) = {cos(g, g_value):.4f}")
turned = "more than" if angle(g, g_value) > angle(g, g_norm) + 1.0 else "about as much as"
print(f"verdict: value clipping turned this gradient by {angle(g, g_value):.1f} degrees, {turned} norm clipping "
      f"({angle(g, g_norm):.1f} degrees); only norm clipping is the formula of section 3.3")

# %% [markdown]
# ## E.2 The batch-normalisation listing (批量归一化)
#
# `nn.BatchNorm2d(num_features=64)` applied to `input` is correct, with two remarks: `input` shadows a
# Python built-in (use another name), and the layer behaves differently in training mode (batch
# statistics, running averages updated) and evaluation mode (running averages), so call
# `model.train()` / `model.eval()` accordingly. Chapter 3 derives the layer from its formula.
#
# The text around the listing is wrong, though: it says batch norm scales each batch's
# activations "to a normal distribution with mean 0 and standard deviation 1". Per channel,
# batch norm computes $\hat x = (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}$ and then
# $\gamma \hat x + \beta$: an affine map. An affine map moves and stretches a distribution but
# keeps its shape, so skewed activations (the output of a ReLU, many of them exactly zero) keep
# their skewness, and once $\gamma, \beta$ are trained they set mean and spread to learned values,
# not 0 and 1.
# The cell measures both on a ReLU's output: the per-channel mean and standard deviation after
# the layer, and the skewness (0 for a normal distribution) before and after it.

# %%
batch_norm = tv.nn.BatchNorm2d(num_features=64)
features = tv.relu(tv.randn(8, 64, 16, 16) * 3 + 1)         # a ReLU's output: skewed, many zeros
out = batch_norm.train()(features).numpy()
mean, std = out.mean(axis=(0, 2, 3)), out.std(axis=(0, 2, 3))
print(f"training mode: per-channel mean within {np.abs(mean).max():.1e} of 0, std within {np.abs(std - 1).max():.1e} of 1")
print("running mean after one batch (momentum 0.1):", batch_norm.running_mean.numpy()[:4].round(3))

def skewness(a):
    """Per-channel skewness E[(a - mean)^3] / std^3 of an (N, C, H, W) array: 0 for a normal distribution."""
    d = a - a.mean(axis=(0, 2, 3), keepdims=True)
    return (d ** 3).mean(axis=(0, 2, 3)) / (d ** 2).mean(axis=(0, 2, 3)) ** 1.5

before, after = skewness(features.numpy()), skewness(out)
at_min = (out == out.min(axis=(0, 2, 3), keepdims=True)).mean()
print(f"skewness before {before.mean():.3f}, after {after.mean():.3f} (max change {np.abs(after - before).max():.1e}); "
      f"{at_min:.0%} of the outputs still sit at their channel's minimum (the ReLU's zeros)")
print("verdict: batch norm standardised each channel (mean 0, std 1) and kept its shape: not a normal distribution"
      if np.abs(after - before).max() < 1e-3 and abs(after.mean()) > 0.3
      else "verdict: the output's shape changed: see the numbers above")

# %% [markdown]
# ## Where the article is wrong
#
# The sections above take the listings apart one by one; in short, with sources:
#
# | appendix | the article says or shows | what is true | source |
# | --- | --- | --- | --- |
# | C.1 / F.1 | `self.encoder.num_features` | torchvision's `VisionTransformer` has no `num_features`; its width is `hidden_dim` (768 for ViT-B/16): `AttributeError` | torchvision source, `torchvision/models/vision_transformer.py` (`self.hidden_dim`, `self.heads`) |
# | C.1 / F.1 | `self.classifier(x.mean([2, 3]))` on the encoder's output | `vit_b_16(...)` returns logits of shape (B, 1000); there are no axes 2 and 3 | same file, `VisionTransformer.forward` (class token, then `self.heads`) |
# | C.1 / F.1 | `vit_b_16(pretrained=True)` | `pretrained` is deprecated since torchvision 0.13 (it warns, "please use 'weights' instead"); `weights=ViT_B_16_Weights.IMAGENET1K_V1` | torchvision docs, "Models and pre-trained weights" (the multi-weight API of 0.13) |
# | F.1 | the code has two parts, "model definition and model training" | the listing defines a model; it trains nothing | the listing itself |
# | C.2 / F.2 | `ResNet(models.resnet18, [2, 2, 2, 2])` | `resnet18` is a function that builds a whole network; `block.expansion` raises `AttributeError`; the block class is `BasicBlock` (or `Bottleneck`) | torchvision source, `torchvision/models/resnet.py` (`BasicBlock.expansion = 1`, `Bottleneck.expansion = 4`) |
# | F.2 | each residual block "consists of conv, batch norm and ReLU" (from the listing) | the listing defines no block; a block also adds its shortcut, $y = F(x) + x$ | He et al., *Deep Residual Learning for Image Recognition*, arXiv:1512.03385, §3.2 |
# | E.1 | `torch.clamp` on each gradient value implements the clipping of §3.3 | clamping changes the gradient's direction (measured above); §3.3's formula rescales by the global L2 norm: `torch.nn.utils.clip_grad_norm_` | Pascanu, Mikolov, Bengio, *On the difficulty of training recurrent neural networks*, arXiv:1211.5063, Algorithm 1; PyTorch docs of `clip_grad_norm_` and `clip_grad_value_` |
# | E.1 | `torch.autograd.grad(...)` then `param.grad.data` | `autograd.grad` returns the gradients and does not fill `.grad` (it stays `None` without a `backward()`); `model.loss` does not exist | PyTorch docs, `torch.autograd.grad` |
# | E.2 | batch norm scales activations "to a normal distribution with mean 0, std 1" | it standardises each channel over the batch (then $\gamma, \beta$ rescale it); the distribution keeps its shape (skewness measured above) | Ioffe, Szegedy, *Batch Normalization*, arXiv:1502.03167, Algorithm 1 |

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Solutions: `chapters/solutions/appendix_cef_code_listings.py`; the checks:
# `chapters/checks/appendix_cef.py`.

# %%
from checks import appendix_cef as check

# %% [markdown]
# ### Exercise 1: what value clipping does to a direction (predict)
# The article's E.1 clamps every gradient value into $[-1, 1]$. For the gradient
# $g = (0.5, 2, -4)$, compute by hand the cosine between $g$ and its clamped copy (1 means the
# direction is unchanged). Then predict: what would the cosine be for norm clipping to
# `max_norm=1`?

# %%
value_clip_cosine = None     # your answer: a number

# %%
check.value_clip_cosine(value_clip_cosine)

# %% [markdown]
# ### Exercise 2: norm clipping over all parameters (implement)
# Write §3.3's clipping for a list of gradient arrays (one per parameter): with the **global**
# norm $\|g\| = \sqrt{\sum_p \sum_i g_{p,i}^2}$ over all of them, multiply every array by
# $\min(1, \text{max\_norm} / \|g\|)$. Return the list of clipped arrays, leaving the inputs
# unchanged. (A common mistake clips each array by its own norm; the check tells you if you did.)

# %%
def clip_grad_norm(grads, max_norm):
    """The arrays of ``grads`` rescaled so that their global L2 norm is at most ``max_norm``."""
    return None              # your code


# %%
check.clip_grad_norm(clip_grad_norm)

# %% [markdown]
# ### Exercise 3: the ResNet listing, called correctly for ResNet-50 (fix)
# torchvision builds ResNet-50 as `ResNet(Bottleneck, [3, 4, 6, 3])`: the same class as C.2,
# with bottleneck blocks (1x1, 3x3, 1x1 convolutions, `expansion = 4`, so the last stage has
# 512 x 4 = 2048 channels). Build it with `tv.models.ResNet` and 1000 classes. Before you run the
# check, predict its parameter count from the one printed for ResNet-18 above: more or fewer
# than twice as many?

# %%
resnet50_model = None        # your model: tv.models.ResNet(...)

# %%
check.resnet50_model(resnet50_model)

# %% [markdown]
# ### Exercise 4: batch norm's running statistics (implement)
# In training mode batch norm normalises with the batch's own mean and variance, and keeps
# running averages for evaluation mode: starting from mean 0 and variance 1, after each batch
# `running = (1 - momentum) * running + momentum * batch_statistic`, per channel. Write a
# function that, given a list of batches of shape (N, C, H, W), returns the pair
# `(running_mean, running_var)` after all of them, each of shape (C,). The check compares it with
# `tv.nn.BatchNorm2d` (and PyTorch's), which store the **unbiased** batch variance (divided by
# $n - 1$, with $n = N H W$) while they normalise with the biased one.

# %%
def running_stats(batches, momentum=0.1):
    """(running_mean, running_var), each (C,), after batch norm has seen ``batches`` in training mode."""
    return None              # your code


# %%
check.running_stats(running_stats)
