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


def _names(keys, limit=16):
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _model_name(model):
    return getattr(model, "default_cfg", {}).get("architecture") or type(model).__name__


def load_state(model, state, source, strict=True, replaced=(), holds=None):
    """Copy the arrays of ``state`` (name -> array) that fit ``model`` into it (in place),
    after comparing every name and shape, and return LoadResult(missing_keys,
    unexpected_keys, mismatched_keys); mismatched entries are (name, shape in file, shape in
    model). ``num_batches_tracked`` counters absent from older files are not counted missing.

    ``source`` names the file in messages, ``holds`` the model the file says it holds.
    ``replaced``: module prefixes of a part the caller replaces (a classifier for new
    classes, or none in a backbone): their names may be missing, mismatched or unexpected.
    Any other difference raises CheckpointError, one line naming the names (the first 16
    of each kind) and both models, unless strict=False, which loads what fits and returns the
    rest: a silently random layer would otherwise pass for a pretrained one. Nothing is
    loaded when it raises; a file that shares no weight with the model always raises.
    """
    from ..errors import CheckpointError

    def outside(keys):   # the names that must match: those not under a replaced prefix
        return [k for k in keys if not any(k == p or k.startswith(p + ".") for p in replaced)]
    own = {name: tuple(t.shape) for name, t in model._state_tensors().items()}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), own[k]) for k in own if k in state and tuple(state[k].shape) != own[k]]
    shapes = [f"{k}: file has {f}, model has {m}" for k, f, m in mismatched if outside([k])]

    def problems(limit):
        return "; ".join(f"{what} ({len(keys)}): {_names(keys, limit)}" for what, keys in (
            ("shape mismatch", shapes), ("missing from the file", outside(missing)),
            ("unexpected in the file", outside(unexpected))) if keys)
    wants, other = _model_name(model), holds is not None and holds != _model_name(model)
    fits = [k for k in outside(own) if k in state and tuple(state[k].shape) == own[k]
            and not k.endswith("num_batches_tracked")]
    if not fits and outside(own):   # another architecture: a few names say enough
        what = f"holds a {holds}, not a {wants} (it shares no weights with one)" if other \
            else f"shares no weights with a {wants}; is it a file of another model?"
        raise CheckpointError(f"{source} {what}: {problems(3)}")
    if strict and (shapes or outside(missing) or outside(unexpected)):
        what = f"holds a {holds}, not a {wants}" if other else f"does not fit a {wants}"
        raise CheckpointError(f"{source} {what}: {problems(16)} (strict=False, or --allow-missing on the "
                              "command line, loads what fits and leaves the rest at random initial values)")
    bad = {k for k, _, _ in mismatched}
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad}, strict=False)
    return LoadResult(missing, unexpected, mismatched)


def read_safetensors(path):
    """The arrays of a ``.safetensors`` file as a dict of NumPy arrays; CheckpointError (one
    line naming the file) for a folder, a ``.tvz`` or anything else that is not one."""
    from ..errors import CheckpointError
    from ..serialization import file_kind
    path = os.fspath(path)
    reader = _safetensors_numpy()
    kind = file_kind(path)
    if kind == "zip":
        raise CheckpointError(f"{path} is a zip archive (a tinyvision .tvz checkpoint?), not a .safetensors file; "
                              "read it with tv.load, or give it to finetune as it is")
    if kind != "safetensors":
        what = {"folder": "a folder", "empty": "empty (0 bytes)"}.get(kind, f"not a .safetensors file ({kind})")
        raise CheckpointError(f"{path} is {what}; expected a .safetensors file of weights")
    try:
        return reader.load_file(path)
    except Exception as exc:   # safetensors raises its own SafetensorError (or OSError) for a damaged file
        raise CheckpointError(f"{path} is a damaged .safetensors file (truncated or corrupted: {exc})") from None


def safetensors_metadata(path):
    """The string -> string metadata of a ``.safetensors`` file's header ({} where it has none)."""
    from safetensors import safe_open
    with safe_open(os.fspath(path), framework="np") as f:
        return f.metadata() or {}


def load_pretrained(model, path, strict=True, map_names=None, interpolate_pos_embed=True, replaced=()):
    """Load a ``.safetensors`` file of weights into ``model`` (in place).

    Args:
        model: the Module to fill; its arrays keep their device and dtype.
        path: the ``.safetensors`` file.
        strict: if True (default), every name the model expects must be in the file with the
            right shape and the file may hold nothing else; otherwise a CheckpointError
            names the missing, unexpected and mismatched names (with both shapes) and
            nothing is loaded. If False, what matches is loaded and the rest is returned.
        map_names: rename the file's names first: a dict old -> new or a function. None
            detects torchvision ViT names and maps them to timm's.
        interpolate_pos_embed: a ViT ``pos_embed`` for another patch grid (another image or
            patch size) is resampled bilinearly to the model's grid instead of mismatching.
        replaced: module prefixes the caller replaces, e.g. ('fc',) to fine-tune a
            1000-class checkpoint into a 10-class model: their names may differ (``load_state``).

    Returns:
        LoadResult(missing_keys, unexpected_keys, mismatched_keys); mismatched entries are
        (name, shape in file, shape in model).
    """
    state = _rename(read_safetensors(path), map_names)
    if interpolate_pos_embed:
        fit_pos_embed(state, model)
    return load_state(model, state, os.fspath(path), strict, replaced,
                      holds=safetensors_metadata(path).get("architecture"))


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
