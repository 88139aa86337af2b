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
# The same mistake in tinyvision, and the corrected call:

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
print(f"norm clipping:  |g| {np.linalg.norm(g):.4f} -> {np.linalg.norm(g_norm):.4f}, matches the formula: "
      f"{np.allclose(g_norm, formula, atol=1e-6)}, cos(g, clipped) = {cos(g, g_norm):.4f}")
print(f"value clipping: |g| -> {np.linalg.norm(g_value):.4f}, cos(g, clipped) = {cos(g, g_value):.4f} (direction changed)")

# %% [markdown]
# ## E.2 The batch-normalisation listing (批量归一化)
#
# `nn.BatchNorm2d(num_features=64)` applied to `input` is correct, with two remarks: `input` shadows a
# Python built-in (use another name), and the layer behaves differently in training mode (batch
# statistics, running averages updated) and evaluation mode (running averages), so call
# `model.train()` / `model.eval()` accordingly. Chapter 3 derives the layer from its formula. The
# tinyvision equivalent:

# %%
batch_norm = tv.nn.BatchNorm2d(num_features=64)
features = tv.randn(8, 64, 16, 16) * 3 + 1
out = batch_norm.train()(features)
print("training mode: per-channel mean ~0:", np.abs(out.numpy().mean(axis=(0, 2, 3))).max() < 1e-4,
      " std ~1:", np.allclose(out.numpy().std(axis=(0, 2, 3)), 1, atol=1e-3))
print("running mean after one batch (momentum 0.1):", batch_norm.running_mean.numpy()[:4].round(3))
