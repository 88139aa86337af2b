"""Pretrained weights in the ``.safetensors`` format (the format timm and the Hugging Face
hub publish): a JSON header of names, dtypes and shapes followed by the raw arrays, so
loading a file never runs code (unlike a pickled PyTorch ``.pth``).

Names are those of timm and torchvision, which the models here share: a torchvision ResNet
or a timm ViT file loads as it is. A torchvision ViT file (``conv_proj``, ``class_token``,
``encoder.layers.encoder_layer_0...``) is recognised and renamed to timm's names.

The ``safetensors`` package is optional (``pip install safetensors``); it is imported only
when a file is read or written.
"""
import os
import re
from collections import namedtuple

import numpy as np

from ..fileio import atomic_open

LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys", "mismatched_keys"])

# torchvision's VisionTransformer -> timm's names. torchvision's fused attention projection
# ``in_proj_weight`` stacks W_q, W_k, W_v along its rows exactly as timm's ``qkv.weight``, so
# a rename is all it takes. Older torchvision releases call the MLP layers linear_1/linear_2.
_TORCHVISION_VIT_NAMES = [
    (r"^class_token$", "cls_token"),
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)$", r"blocks.\1.attn.qkv.\2"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
]


def torchvision_vit_to_timm(name):
    """timm's name for a torchvision ViT parameter name (other names come back unchanged)."""
    for pattern, replacement in _TORCHVISION_VIT_NAMES:
        new, n = re.subn(pattern, replacement, name)
        if n:
            return new
    return name


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError as e:
        raise ImportError("reading and writing .safetensors files needs the safetensors package: "
                          "pip install safetensors") from e
    return safetensors.numpy


def _rename(state, map_names):
    """Apply ``map_names`` (None: detect torchvision ViT names; a dict old -> new; or a
    function name -> name) to the keys of ``state``."""
    if map_names is None:
        map_names = torchvision_vit_to_timm if ("class_token" in state or "conv_proj.weight" in state) else None
    if map_names is None:
        return state
    rename = map_names if callable(map_names) else (lambda k: map_names.get(k, k))
    out = {}
    for key, value in state.items():
        new = rename(key)
        if new in out:
            raise ValueError(f"map_names sends two checkpoint names to {new!r}")
        out[new] = value
    return out


def fit_pos_embed(state, model):
    """Resample ``state['pos_embed']`` (in place) to ``model``'s patch grid where the two differ:
    a ViT trained at one image size starts another (e.g. 32x32 CIFAR -> 64x64 scenes)."""
    own = model._state_tensors().get("pos_embed")
    if own is not None and "pos_embed" in state and tuple(state["pos_embed"].shape) != tuple(own.shape) \
            and hasattr(model, "patch_embed"):
        from .vit import resample_pos_embed
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], model.patch_embed.grid_size,
                                                num_prefix_tokens=model.num_prefix_tokens)
    return state


def load_pretrained(model, path, strict=True, map_names=None, interpolate_pos_embed=True):
    """Load a ``.safetensors`` file of weights into ``model`` (in place).

    Args:
        model: the Module to fill; its arrays keep their device and dtype.
        path: the ``.safetensors`` file.
        strict: if True (default), every name the model expects must be in the file with the
            right shape and the file may hold nothing else; otherwise a RuntimeError lists the
            missing, unexpected and mismatched names (with both shapes) and nothing is loaded.
            If False, what matches is loaded and the rest is returned, e.g. to fine-tune from
            a 1000-class checkpoint into a model whose head has 10 outputs.
        map_names: rename the file's names first: a dict old -> new or a function. None
            detects torchvision ViT names and maps them to timm's.
        interpolate_pos_embed: a ViT ``pos_embed`` for another patch grid (another image or
            patch size) is resampled bilinearly to the model's grid instead of mismatching.

    Returns:
        LoadResult(missing_keys, unexpected_keys, mismatched_keys); mismatched entries are
        (name, shape in file, shape in model).

    ``num_batches_tracked`` counters absent from older checkpoints are not counted missing
    (they only matter for batch norm with momentum=None).
    """
    state = _rename(_safetensors_numpy().load_file(os.fspath(path)), map_names)
    own = {name: t.shape for name, t in model._state_tensors().items()}

    if interpolate_pos_embed:
        fit_pos_embed(state, model)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), own[k]) for k in own
                  if k in state and tuple(state[k].shape) != own[k]]
    if strict and (missing or unexpected or mismatched):
        lines = [f"cannot load {os.fspath(path)} into {type(model).__name__} (strict=True):"]
        if missing:
            lines.append(f"  missing from the file ({len(missing)}): " + ", ".join(missing))
        if unexpected:
            lines.append(f"  unexpected in the file ({len(unexpected)}): " + ", ".join(unexpected))
        for k, file_shape, model_shape in mismatched:
            lines.append(f"  shape mismatch for {k}: file has {file_shape}, model has {model_shape}")
        lines.append("  (strict=False loads what matches; map_names renames the file's names)")
        raise RuntimeError("\n".join(lines))
    bad = {k for k, _, _ in mismatched}
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad}, strict=False)
    return LoadResult(missing, unexpected, mismatched)


def save_pretrained(model, path, metadata=None):
    """Write ``model``'s state dict (parameters and persistent buffers, timm/torchvision
    names) to a ``.safetensors`` file: floating arrays as contiguous float32, integer buffers
    (``num_batches_tracked``) as they are. ``metadata``: optional dict of str -> str for the
    header. The file is written to a temporary name and renamed over ``path`` (atomic), so
    an interrupted save never leaves a truncated file."""
    st = _safetensors_numpy()
    # astype(order="C"), not ascontiguousarray, which would turn 0-d counters into shape (1,)
    tensors = {k: v.astype(np.float32 if v.dtype.kind == "f" else v.dtype, order="C", copy=False)
               for k, v in model.state_dict().items()}
    data = st.save(tensors, metadata=dict(metadata or {}, format="np"))
    with atomic_open(path) as f:
        f.write(data)
