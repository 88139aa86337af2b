"""Self-supervised pretraining: tasks whose labels come from the images themselves.

Each task is a Module wrapping a backbone (a classifier model of ``tv.models``, built with
``num_classes=0``) and adding what the task needs (a position head, a decoder, a 4-way
head). ``task.loss(images)`` returns (loss, accuracy or None) for a batch of normalised
images (B, C, H, W); the backbone keeps the classifier's parameter names, so after
pretraining ``save_backbone`` writes a ``.safetensors`` file that ``transfer.finetune`` (or
``models.load_pretrained(..., strict=False)``) loads into the classifier, head missing.

- ``PositionPrediction`` (ViT): the image's patches are shuffled and the Transformer, which
  gets *no* position embeddings, predicts for each token the position its patch came from,
  an N-way classification per token. Without position embeddings self-attention is
  permutation-equivariant, so the answer must come from what the patch shows and from the
  other patches (sky above, wheels below, edges that continue).
- ``MaskedAutoencoder`` (ViT, He et al. 2021): 75% of the patches are hidden; the encoder
  sees only the visible ones (a quarter of the tokens: cheap), a light decoder gets the
  encoded tokens plus a learned mask token at every hidden position and reconstructs their
  pixels. Loss: mean squared error over the hidden patches only, on pixels normalised per
  patch (the target t = (x - mean(x)) / sqrt(var(x) + 1e-6) over the patch's values).
- ``RotationPrediction`` (any classifier, Gidaris et al. 2018): each image is rotated by
  k * 90 degrees, k ~ U{0, 1, 2, 3}, and the model predicts k; recognising "upright" needs
  the notion of objects and their parts.

Randomness (shuffles, masks, rotations) comes from a NumPy generator (default: tinyvision's
seeded CPU generator, which training checkpoints save), so runs are reproducible.
"""
import copy
import json

import numpy as np

from .. import backend, models, nn, ops
from ..models.vit import Block
from ..nn.module import new_parameter
from ..nn.position import sincos_2d
from ..tensor import Tensor

METHODS = ("position", "mae", "rotation")


def _xp(x):
    return backend.array_module(x.data if isinstance(x, Tensor) else x)


def patchify(images, patch):
    """(B, C, H, W) array -> (B, N, C p p) array: patch n (row-major over the (H/p, W/p)
    grid) flattened channel-first."""
    B, C, H, W = images.shape
    gh, gw = H // patch, W // patch
    x = images.reshape(B, C, gh, patch, gw, patch).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(B, gh * gw, C * patch * patch)


def unpatchify(patches, patch, channels, grid):
    """Inverse of ``patchify``: (B, N, C p p) -> (B, C, gh p, gw p)."""
    B = patches.shape[0]
    gh, gw = grid
    x = patches.reshape(B, gh, gw, channels, patch, patch).transpose(0, 3, 1, 4, 2, 5)
    return x.reshape(B, channels, gh * patch, gw * patch)


def random_permutations(batch, n, rng):
    """(batch, n) int64: an independent uniform permutation of 0..n-1 per row (argsort of
    uniform noise)."""
    return np.argsort(rng.random((batch, n)), axis=1)


def shuffle_patches(images, patch, perm):
    """Images whose patches are rearranged: slot j of image b shows the patch that was at
    position perm[b, j]. images (B, C, H, W) array, perm (B, N) -> array (B, C, H, W)."""
    xp = backend.array_module(images)
    B, C, H, W = images.shape
    patches = patchify(images, patch)
    moved = xp.take_along_axis(patches, xp.asarray(perm)[:, :, None], axis=1)
    return unpatchify(moved, patch, C, (H // patch, W // patch))


def rotate_images(images, k):
    """Rotate image b of (B, C, H, W) (square) by k[b] * 90 degrees counter-clockwise."""
    xp = backend.array_module(images)
    out = xp.empty_like(images)
    for quarter in range(4):
        idx = np.flatnonzero(k == quarter)
        if len(idx):
            idx_dev = xp.asarray(idx)
            out[idx_dev] = xp.rot90(images[idx_dev], quarter, axes=(2, 3))
    return out


def _accuracy(logits, targets):
    return float((backend.to_numpy(logits.data).argmax(-1) == backend.to_numpy(targets)).mean())


class PretextTask(nn.Module):
    """Base class: ``backbone`` plus task layers. ``default_cfg`` is the backbone's (input
    size, normalisation, recipe), so the data pipeline treats the task like the model."""

    method = None

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    @property
    def default_cfg(self):
        return self.backbone.default_cfg

    def no_weight_decay(self):
        own = self.backbone.no_weight_decay() if hasattr(self.backbone, "no_weight_decay") else ()
        return {"backbone." + n for n in own}

    def loss(self, images, rng=None):
        """(loss Tensor, accuracy float or None) for normalised images (B, C, H, W)."""
        raise NotImplementedError(f"{type(self).__name__} must define loss()")


def _vit_backbone(backbone, task):
    if not hasattr(backbone, "patch_embed") or not hasattr(backbone, "blocks"):
        raise ValueError(f"{task} needs a Vision Transformer backbone (patch_embed, blocks), "
                         f"got {type(backbone).__name__}; use rotation for ResNets")
    return backbone


class PositionPrediction(PretextTask):
    """Predict each shuffled patch's original position.

    Forward: x (B, C, H, W) with shuffled patches -> logits (B, N, N): token j's scores over
    the N positions, from z = norm(blocks([cls; E x_1; ...; E x_N])) without E_pos.
    Loss: cross-entropy over the B N tokens against perm (B, N)."""

    method = "position"

    def __init__(self, backbone):
        super().__init__(_vit_backbone(backbone, "position prediction"))
        self.num_patches = backbone.patch_embed.num_patches
        self.position_head = nn.Linear(backbone.embed_dim, self.num_patches)

    def forward(self, x):
        vit = self.backbone
        tokens = vit.patch_embed(x)                                    # (B, N, D), no E_pos
        cls = ops.broadcast_to(vit.cls_token, (tokens.shape[0], 1, vit.embed_dim))
        z = vit.norm(vit.blocks(ops.cat([cls, tokens], axis=1)))
        return self.position_head(z[:, 1:])                           # (B, N, N)

    def make_batch(self, images, rng):
        """(shuffled images array, perm (B, N) targets) for an images array (B, C, H, W)."""
        perm = random_permutations(images.shape[0], self.num_patches, rng)
        return shuffle_patches(images, self.backbone.patch_embed.patch_size[0], perm), perm

    def loss(self, images, rng=None):
        rng = rng or backend.generator("cpu")
        shuffled, perm = self.make_batch(images.data, rng)
        logits = self(Tensor(shuffled, dtype=images.dtype))
        B, N = perm.shape
        targets = _xp(images).asarray(perm.reshape(-1))
        flat = ops.reshape(logits, B * N, N)
        return ops.cross_entropy(flat, Tensor(targets)), _accuracy(flat, targets)


class MaskedAutoencoder(PretextTask):
    """MAE: encode the visible quarter of the patches, reconstruct the hidden ones.

    Args:
        backbone: a VisionTransformer (its patch embedding, class token, position embeddings,
            blocks and final norm are the encoder).
        mask_ratio: fraction of patches hidden (N_keep = round(N (1 - mask_ratio)) visible).
        decoder_dim, decoder_depth, decoder_heads: the light decoder (default: the encoder's
            width, one block, the encoder's heads).
        norm_pix: normalise each target patch by its own mean and variance.

    Forward: x (B, C, H, W) -> (pred (B, N, C p p), mask (B, N) array, 1 = hidden).
    """

    method = "mae"

    def __init__(self, backbone, mask_ratio=0.75, decoder_dim=None, decoder_depth=1, decoder_heads=None,
                 norm_pix=True):
        super().__init__(_vit_backbone(backbone, "the masked autoencoder"))
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        pe = backbone.patch_embed
        self.mask_ratio, self.norm_pix = mask_ratio, norm_pix
        self.num_patches, self.patch = pe.num_patches, pe.patch_size[0]
        self.in_chans = pe.proj.weight.shape[1]
        dim = decoder_dim or backbone.embed_dim
        heads = decoder_heads or backbone.blocks[0].attn.num_heads
        self.decoder_embed = nn.Linear(backbone.embed_dim, dim)
        self.mask_token = nn.init.normal_(new_parameter((1, 1, dim)), std=0.02)
        # Fixed 2-D sine-cosine positions for the decoder (the class token's row is zero):
        # the mask tokens are all alike, their position is what tells them apart.
        codes = np.concatenate([np.zeros((1, dim), np.float32), sincos_2d(pe.grid_size, dim)])
        self.register_buffer("decoder_pos", backend.xp_for(backend.get_default_device()).asarray(codes[None]))
        self.decoder_blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio=2.0, gelu="tanh")
                                              for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dim, self.patch * self.patch * self.in_chans)

    def no_weight_decay(self):
        return super().no_weight_decay() | {"mask_token"}

    @property
    def num_visible(self):
        return max(1, int(round(self.num_patches * (1.0 - self.mask_ratio))))

    def random_masking(self, batch, rng):
        """(ids_keep (B, N_keep), ids_restore (B, N), mask (B, N) float32, 1 = hidden).
        ids_shuffle = argsort(noise) ranks the patches at random, the first N_keep stay
        visible; ids_restore = argsort(ids_shuffle) puts the shuffled sequence back in order."""
        ids_shuffle = random_permutations(batch, self.num_patches, rng)
        ids_restore = np.argsort(ids_shuffle, axis=1)
        keep = self.num_visible
        mask = np.ones((batch, self.num_patches), np.float32)
        mask[:, :keep] = 0.0
        mask = np.take_along_axis(mask, ids_restore, axis=1)              # in image order
        return ids_shuffle[:, :keep], ids_restore, mask

    def forward(self, x, rng=None):
        rng = rng or backend.generator("cpu")
        vit, xp = self.backbone, _xp(x)
        B, N = x.shape[0], self.num_patches
        ids_keep, ids_restore, mask = self.random_masking(B, rng)
        rows = xp.arange(B)[:, None]
        tokens = vit.patch_embed(x) + vit.pos_embed[:, vit.num_prefix_tokens:]       # (B, N, D)
        visible = tokens[rows, xp.asarray(ids_keep)]                                 # (B, N_keep, D)
        cls = ops.broadcast_to(vit.cls_token + vit.pos_embed[:, :vit.num_prefix_tokens], (B, 1, vit.embed_dim))
        latent = vit.norm(vit.blocks(ops.cat([cls, visible], axis=1)))
        d = self.decoder_embed(latent)                                               # (B, 1 + N_keep, Dd)
        fill = ops.broadcast_to(self.mask_token, (B, N - ids_keep.shape[1], d.shape[2]))
        seq = ops.cat([d[:, 1:], fill], axis=1)[rows, xp.asarray(ids_restore)]      # image order
        seq = ops.cat([d[:, :1], seq], axis=1) + self.decoder_pos
        pred = self.decoder_pred(self.decoder_norm(self.decoder_blocks(seq)))
        return pred[:, 1:], mask

    def target(self, images):
        """The reconstruction target (B, N, C p p) for an images array (B, C, H, W)."""
        t = patchify(images, self.patch)
        if self.norm_pix:
            t = (t - t.mean(axis=-1, keepdims=True)) / (t.var(axis=-1, keepdims=True) + 1e-6) ** 0.5
        return t

    def loss(self, images, rng=None):
        """L = sum_n m_n mean_k (pred_nk - t_nk)^2 / sum_n m_n over the hidden patches (m = 1)."""
        pred, mask = self(images, rng)
        xp = _xp(images)
        diff = pred - Tensor(self.target(images.data), dtype=pred.dtype)
        per_patch = ops.mean(diff * diff, axis=-1)                                   # (B, N)
        m = xp.asarray(mask)
        return ops.sum(per_patch * Tensor(m)) / float(m.sum()), None


class RotationPrediction(PretextTask):
    """Predict which of 0, 90, 180, 270 degrees an image was rotated by: the backbone's
    classifier is reset to 4 outputs. Forward: x (B, C, H, W) -> logits (B, 4)."""

    method = "rotation"

    def __init__(self, backbone):
        super().__init__(backbone)
        backbone.reset_classifier(4)

    def forward(self, x):
        return self.backbone(x)

    def loss(self, images, rng=None):
        rng = rng or backend.generator("cpu")
        k = rng.integers(0, 4, images.shape[0])
        logits = self(Tensor(rotate_images(images.data, k), dtype=images.dtype))
        targets = _xp(images).asarray(k)
        return ops.cross_entropy(logits, Tensor(targets)), _accuracy(logits, targets)


_TASKS = {"position": PositionPrediction, "mae": MaskedAutoencoder, "rotation": RotationPrediction}


def build_pretext(method, model_name, model_kwargs=None, **task_kwargs):
    """The pretext task ``method`` ('position' | 'mae' | 'rotation') around a fresh
    ``model_name`` backbone built with ``num_classes=0`` and ``model_kwargs``."""
    if method not in _TASKS:
        raise ValueError(f"unknown pretext method {method!r}; choose from {METHODS}")
    backbone = models.create(model_name, num_classes=0, **(model_kwargs or {}))
    return _TASKS[method](backbone, **task_kwargs)


def save_backbone(task, path, model_kwargs=None):
    """Write the task's backbone, without any head, to ``path`` (.safetensors) in the
    classifier's names, recording ``architecture``, ``model_kwargs`` and ``pretext`` in the
    header (``transfer.finetune`` reads them to rebuild the model). The live task keeps its
    heads: a copy is stripped."""
    backbone = copy.deepcopy(task.backbone)
    backbone.reset_classifier(0)
    models.save_pretrained(backbone, path, metadata={
        "architecture": backbone.default_cfg["architecture"], "model_kwargs": json.dumps(model_kwargs or {}),
        "pretext": task.method})
    return path
