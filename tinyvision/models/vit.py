"""Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", 2020).

An image is cut into P x P patches, each patch is embedded linearly into a D-dimensional
token, a learned class token is prepended, position embeddings are added, and a stack of
pre-norm Transformer blocks mixes the tokens:

    z_0 = [x_cls; E x_1; ...; E x_N] + E_pos                   (B, N + 1, D)
    z'_l = z_{l-1} + MSA(LN(z_{l-1}))                           attention: tokens talk
    z_l  = z'_l + MLP(LN(z'_l))                                 MLP: each token alone
    y    = head(LN(z_L)[:, 0])                                  (or the mean of the patch tokens)

Structure and parameter names follow timm (``patch_embed.proj.weight``, ``cls_token``,
``pos_embed``, ``blocks.0.attn.qkv.weight``, ``norm.weight``, ``head.weight``), so timm
checkpoints load as they are; torchvision's ViT names are mapped by ``pretrained``.
"""
import math

import numpy as np

from .. import backend, nn, ops
from ..nn.module import new_parameter
from ..nn.position import sincos_2d
from ..ops.conv import _pair
from ..ops.resize import interpolate
from ..tensor import Tensor, no_grad
from .registry import cifar_cfg, imagenet_cfg, register_model


class PatchEmbed(nn.Module):
    """Image to patch tokens: a convolution with kernel = stride = patch size (one linear map
    E applied to every non-overlapping patch), then the grid is flattened to a sequence.

    Shapes: x (B, C, H, W) with (H, W) = img_size -> (B, N, D),
    N = (H / P) (W / P) tokens of D = embed_dim features (row-major over the patch grid).
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size, self.patch_size = _pair(img_size, "img_size"), _pair(patch_size, "patch_size")
        if any(s % p for s, p in zip(self.img_size, self.patch_size)):
            raise ValueError(f"image size {self.img_size} is not divisible by the patch size {self.patch_size}")
        self.grid_size = tuple(s // p for s, p in zip(self.img_size, self.patch_size))
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, self.patch_size, stride=self.patch_size)

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[2:]) != self.img_size:
            raise ValueError(
                f"PatchEmbed expected images (B, C, {self.img_size[0]}, {self.img_size[1]}), got "
                f"{tuple(x.shape)}; build the model with img_size={tuple(x.shape[2:])} (the position "
                "embeddings have one entry per patch; load_pretrained resamples them)")
        x = self.proj(x)                                         # (B, D, H/P, W/P)
        B, D = x.shape[:2]
        return ops.transpose(ops.reshape(x, B, D, self.num_patches), 1, 2)   # (B, N, D)

    def extra_repr(self):
        return f"img_size={self.img_size}, patch_size={self.patch_size}, num_patches={self.num_patches}"


class Mlp(nn.Module):
    """The position-wise feed-forward network: y = fc2(drop(GELU(fc1(x)))), with a hidden
    width of mlp_ratio * D; ``gelu`` picks the exact ('none') or the 'tanh' GELU.
    Shapes: (..., in) -> (..., out)."""

    def __init__(self, in_features, hidden_features, out_features=None, drop=0.0, gelu="none"):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate=gelu)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016) for residual branches: in training each sample's
    branch output is dropped with probability p and the survivors are scaled by 1 / (1 - p),

        y_b = x_b * m_b / (1 - p),   m_b ~ Bernoulli(1 - p), one draw per sample b,

    so that x + drop_path(F(x)) skips the whole block for that sample and E[y] = x. The
    identity in evaluation. Any shape (B, ...) -> same shape.
    """

    def __init__(self, drop_prob=0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x):
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        # One draw per sample, broadcast over the other axes; the backend's seeded generator
        # (as dropout uses) keeps runs reproducible and resumable.
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = backend.rand(shape, dtype=x.dtype, device=x.device) < keep
        return x * Tensor(mask.astype(x.dtype) / keep, dtype=x.dtype)

    def extra_repr(self):
        return f"drop_prob={self.drop_prob}"


class Block(nn.Module):
    """A pre-norm Transformer block, two residual branches:

        x = x + drop_path(attn(norm1(x)))
        x = x + drop_path(mlp(norm2(x)))

    Normalising the branch input (not the sum) keeps an identity path from input to output,
    which is what lets deep stacks train without warmup tricks.

    Shapes: x (B, N, D) -> (B, N, D); with return_attention, also the attention (B, h, N, N).
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, gelu="none"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadSelfAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                               proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop, gelu=gelu)

    def forward(self, x, return_attention=False):
        y = self.attn(self.norm1(x), return_attention=return_attention)
        if return_attention:
            y, attn = y
        x = x + self.drop_path(y)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, attn) if return_attention else x


def resample_pos_embed(pos_embed, new_grid, old_grid=None, num_prefix_tokens=1):
    """Bilinearly resample position embeddings (1, P + gh gw, D) to a new patch grid, e.g. to
    fine-tune at another resolution: the prefix (class) token's embedding is kept, the patch
    embeddings are treated as a D-channel gh x gw image. ``old_grid`` defaults to a square
    grid. Returns a NumPy array (1, P + new_h new_w, D)."""
    pos_embed = np.asarray(pos_embed)
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    n, D = grid.shape[1:]
    if old_grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"cannot resample {n} position embeddings: not a square grid; pass old_grid")
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != n:
        raise ValueError(f"old_grid {old_grid} does not hold the {n} patch position embeddings")
    image = grid.reshape(1, old_grid[0], old_grid[1], D).transpose(0, 3, 1, 2)
    with no_grad():
        image = interpolate(Tensor(image, dtype=image.dtype), size=tuple(new_grid), mode="bilinear").numpy()
    resized = image.transpose(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], D)
    return np.concatenate([prefix, resized], axis=1)


class VisionTransformer(nn.Module):
    """ViT: patch embedding, class token, position embeddings, ``depth`` Blocks, final norm
    and a linear head.

    Args:
        img_size, patch_size, in_chans: input images (in_chans, img_size, img_size) cut into
            patches of patch_size (img_size must be divisible by it).
        num_classes: outputs of ``head`` (0: Identity, the model returns pooled features).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: the Transformer's size.
        drop_rate: dropout after the position embedding, in the MLP and on the attention output.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth; block i drops its branches with probability
            drop_path_rate * i / (depth - 1) (deeper blocks more, the first never).
        global_pool: 'token' (the class token's final state) or 'avg' (mean of the patch tokens).
        pos_embed: 'learned' (a Parameter, trunc-normal std 0.02) or 'sincos' (a fixed 2-D
            sine-cosine buffer; still saved in the state dict under ``pos_embed``).
        gelu: 'none' (exact, erf) or 'tanh' GELU in the MLPs.

    Shapes: x (B, in_chans, img_size, img_size) -> logits (B, num_classes).
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, global_pool="token", pos_embed="learned", gelu="none"):
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        if pos_embed not in ("learned", "sincos"):
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got {pos_embed!r}")
        self.num_classes, self.global_pool = num_classes, global_pool
        self.embed_dim = self.num_features = embed_dim
        self.num_prefix_tokens = 1
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_tokens = self.num_prefix_tokens + self.patch_embed.num_patches
        self.cls_token = nn.init.normal_(new_parameter((1, 1, embed_dim)), std=1e-6)
        if pos_embed == "learned":
            self.pos_embed = nn.init.trunc_normal_(new_parameter((1, num_tokens, embed_dim)), std=0.02)
        else:
            xp = backend.xp_for(backend.get_default_device())
            codes = sincos_2d(self.patch_embed.grid_size, embed_dim)         # class token: zeros
            codes = np.concatenate([np.zeros((self.num_prefix_tokens, embed_dim), np.float32), codes])
            self.register_buffer("pos_embed", xp.asarray(codes[None]))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rates[i], gelu)
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = self._new_head(num_classes)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                _init_linear(m)

    def _new_head(self, num_classes):
        return _init_linear(nn.Linear(self.embed_dim, num_classes)) if num_classes else nn.Identity()

    def no_weight_decay(self):
        """Names of parameters that should not be weight-decayed (as timm): the class token
        and the position embeddings are lookups, not weights that scale activations."""
        return {"cls_token", "pos_embed"}

    def _embed(self, x):
        x = self.patch_embed(x)                                           # (B, N, D)
        cls = ops.broadcast_to(self.cls_token, (x.shape[0], 1, self.embed_dim))
        return self.pos_drop(ops.cat([cls, x], axis=1) + self.pos_embed)   # (B, N + 1, D)

    def forward_features(self, x):
        """Every token after the final norm: (B, C, H, W) -> (B, N + 1, D), class token first."""
        return self.norm(self.blocks(self._embed(x)))

    def forward_head(self, x, pre_logits=False):
        """Pool the tokens (class token or mean of the patch tokens) and classify:
        (B, N + 1, D) -> (B, num_classes), or the pooled (B, D) with pre_logits=True."""
        x = x[:, 0] if self.global_pool == "token" else ops.mean(x[:, self.num_prefix_tokens:], axis=1)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_attention_maps(self, x):
        """The attention weights of every block for images x: a list of ``depth`` Tensors
        (B, num_heads, N + 1, N + 1) whose rows sum to 1 (row n: where token n looks; row 0,
        the class token's, is the usual map to visualise). Runs under the current mode and
        records gradients if enabled; wrap in ``tv.no_grad()`` for visualisation."""
        x, maps = self._embed(x), []
        for block in self.blocks:
            x, attn = block(x, return_attention=True)
            maps.append(attn)
        return maps

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes, global_pool=None):
        """Replace ``head`` by a fresh one with ``num_classes`` outputs (0: Identity), and
        optionally change the pooling."""
        if global_pool is not None:
            if global_pool not in ("token", "avg"):
                raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = self._new_head(num_classes)
        if hasattr(self, "default_cfg"):
            self.default_cfg["num_classes"] = num_classes


def _init_linear(m):
    # timm's ViT init: truncated normal std 0.02 for every Linear, zero biases.
    nn.init.trunc_normal_(m.weight, std=0.02)
    if m.bias is not None:
        nn.init.zeros_(m.bias)
    return m


# ---------------------------------------------------------------- configurations
def _vit_224_cfg(img_size=224, **_):
    return imagenet_cfg("vit_adamw", img_size=img_size)


def _vit_cifar_cfg(img_size=32, **_):
    return dict(cifar_cfg("vit_adamw"), input_size=(3, img_size, img_size))


def _vit(num_classes, defaults, kwargs):
    return VisionTransformer(num_classes=num_classes, **dict(defaults, **kwargs))


@register_model(_vit_224_cfg)
def vit_tiny_patch16_224(num_classes=1000, **kwargs):
    """ViT-Ti/16: D 192, 12 blocks, 3 heads; 5.7M parameters with 1000 classes."""
    return _vit(num_classes, dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), kwargs)


@register_model(_vit_224_cfg)
def vit_small_patch16_224(num_classes=1000, **kwargs):
    """ViT-S/16: D 384, 12 blocks, 6 heads; 22.1M parameters with 1000 classes."""
    return _vit(num_classes, dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), kwargs)


@register_model(_vit_224_cfg)
def vit_base_patch16_224(num_classes=1000, **kwargs):
    """ViT-B/16: D 768, 12 blocks, 12 heads; 86,567,656 parameters with 1000 classes."""
    return _vit(num_classes, dict(patch_size=16, embed_dim=768, depth=12, num_heads=12), kwargs)


# CIFAR ViTs: 4x4 patches of a 32x32 image give 64 tokens. Trained from scratch on 50k images,
# they need regularisation: stochastic depth 0.1 by default (as in ViT-Lite / CCT).
# CIFAR ViTs use the tanh form of GELU: NumPy has no erf, and the exact GELU's rational erf
# approximation took a fifth of a vit_cifar_small training step on the CPU (the 224 models keep
# timm's exact GELU so that pretrained weights see the function they were trained with).
_CIFAR_VIT = dict(img_size=32, patch_size=4, drop_path_rate=0.1, gelu="tanh")


@register_model(_vit_cifar_cfg)
def vit_lite_7_4(num_classes=10, **kwargs):
    """ViT-Lite-7/4 (Hassani et al. 2021, with a class token): D 256, 7 blocks, 4 heads,
    MLP ratio 2; 3.7M parameters."""
    return _vit(num_classes, dict(_CIFAR_VIT, embed_dim=256, depth=7, num_heads=4, mlp_ratio=2.0), kwargs)


@register_model(_vit_cifar_cfg)
def vit_cifar_small(num_classes=10, **kwargs):
    """The CPU-trainable CIFAR ViT: D 192, 6 blocks, 3 heads, patch 4, MLP ratio 2; 1.8M parameters."""
    return _vit(num_classes, dict(_CIFAR_VIT, embed_dim=192, depth=6, num_heads=3, mlp_ratio=2.0), kwargs)


@register_model(_vit_cifar_cfg)
def vit_cifar_tiny(num_classes=10, **kwargs):
    """A minute-scale CIFAR ViT for quick experiments and tests: D 64, 2 blocks, 2 heads, patch 4;
    no stochastic depth, so that training-mode outputs are deterministic (e.g. CPU vs GPU)."""
    return _vit(num_classes, dict(_CIFAR_VIT, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0,
                                  drop_path_rate=0.0), kwargs)
