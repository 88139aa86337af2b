"""Saving and loading checkpoints without pickle: ``tv.save(obj, path)``, ``tv.load(path)``.

A file is a zip archive that ``numpy.load`` reads as an ``.npz`` (with allow_pickle=False):

- one ``<name>.npy`` member per array, named by its path in the saved structure with '/'
  between levels: ``model/layer1.0.conv1.weight``, ``optimizer/state/0/momentum_buffer``;
- one ``__meta__.json`` member: ``{"format": "tinyvision", "version": 1, "tree": ...}``,
  where the tree is the saved structure in JSON with every array replaced by
  ``{"__array__": "<name>"}``.

JSON holds dicts with string keys, lists, strings, numbers (NaN and infinity included),
booleans and None directly. Three tagged objects cover the rest, so that ``load`` gives back
what was saved: ``{"__array__": name}``, ``{"__tuple__": [...]}`` and
``{"__dict__": [[key, value], ...]}`` for dicts whose keys are not all strings (an optimizer's
integer-keyed state) or that use one of these tag names as a key. NumPy scalars become Python
numbers; Tensors and CuPy arrays are saved as host arrays and load as NumPy arrays.

Loading never unpickles: arrays of Python objects are refused when saving, and the archive
is read with allow_pickle=False. Saving goes through ``fileio.atomic_open`` (a temporary file,
fsynced, renamed over the target), so a crash or an error mid-write leaves the previous file
intact and no partial file behind.
"""
import errno
import json
import os
import re
import zipfile
import zlib

import numpy as np

from . import backend
from .errors import CheckpointError
from .fileio import atomic_open
from .tensor import Tensor

FORMAT, VERSION = "tinyvision", 1
META = "__meta__.json"
_TAGS = ("__array__", "__tuple__", "__dict__")


SerializationError = CheckpointError   # this module's earlier name for it


# ---------------------------------------------------------------- encoding
class _Encoder:
    """Turns a nested structure into a JSON tree plus the arrays it refers to."""

    def __init__(self):
        self.arrays = {}

    def _member(self, path):
        name = "/".join(path) or "array"
        unique, n = name, 1
        while unique in self.arrays or unique == META:
            unique, n = f"{name}~{n}", n + 1
        return unique

    def encode(self, obj, path):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, Tensor):
            obj = obj.data
        if hasattr(obj, "__array_interface__") or backend.device_of(obj) == "cuda":
            array = backend.to_numpy(obj)
            if array.dtype.hasobject:
                raise TypeError(f"save: the array at {'/'.join(path) or '<root>'} holds Python objects "
                                "(dtype object), which cannot be saved without pickle")
            name = self._member(path)
            self.arrays[name] = array
            return {"__array__": name}
        if isinstance(obj, dict):
            if all(isinstance(k, str) and k not in _TAGS for k in obj):
                return {k: self.encode(v, path + [k]) for k, v in obj.items()}
            return {"__dict__": [[self.encode(k, path + ["key"]), self.encode(v, path + [str(k)])]
                                 for k, v in obj.items()]}
        if isinstance(obj, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        raise TypeError(f"save: cannot save {type(obj).__name__} at {'/'.join(path) or '<root>'}; "
                        "use arrays, Tensors, numbers, strings, None, lists, tuples and dicts")


def save(obj, path):
    """Write ``obj`` (arrays, Tensors, state dicts, and numbers, strings, None, lists, tuples
    and dicts of them, nested) to ``path`` atomically. See the module docstring for the format."""
    encoder = _Encoder()
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": encoder.encode(obj, [])})
    with atomic_open(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            for name, array in encoder.arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
            zf.writestr(META, meta)


# ---------------------------------------------------------------- decoding
def file_kind(path):
    """What ``path`` holds, judged by its first bytes (not its name): 'folder', 'empty',
    'zip' (a tinyvision file, an .npz, a PyTorch zip), 'safetensors' (an 8-byte header length,
    then a JSON header), 'pickle', 'npy', 'text' or 'unknown'. FileNotFoundError if absent."""
    if os.path.isdir(path):
        return "folder"
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "empty"
    if head[:2] == b"PK":
        return "zip"
    if len(head) > 8 and head[8:10] in (b"{\"", b"{}") and 2 <= int.from_bytes(head[:8], "little") < 1 << 30:
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def _folder_hint(path):
    inside = sorted(f for f in os.listdir(path) if f.endswith(".tvz"))
    return "; give one of its files: " + ", ".join(os.path.join(path, f) for f in inside) if inside else ""


_NOT_TINYVISION = {
    "safetensors": "is a .safetensors file of weights only (no model name, classes or training state), not a "
                   "tinyvision .tvz file; to start from these weights: python -m tinyvision finetune {path} "
                   "(--model NAME where the file does not name its model), or tv.models.load_pretrained(model, path)",
    "pickle": "is a Python pickle (a PyTorch .pt/.pth?), not a tinyvision file; tinyvision never unpickles: save "
              "the state dict as .safetensors and load it with tv.models.load_pretrained",
    "npy": "is a single NumPy array (.npy), not a tinyvision file",
    "text": "is a text file, not a tinyvision file (.tvz, written by tv.save)",
    "unknown": "is not a tinyvision file (.tvz, written by tv.save): it is not a zip archive",
}


def _open(path):
    """The zip archive at ``path``, or CheckpointError saying what the file is instead."""
    kind = file_kind(path)
    if kind == "folder":
        raise CheckpointError(f"{path} is a folder, not a checkpoint file{_folder_hint(path)}")
    if kind == "empty":
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint: a save or a copy that did not finish?")
    if kind != "zip":
        raise CheckpointError(f"{path} " + _NOT_TINYVISION[kind].format(path=path))
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        if "not a zip file" in str(exc):   # no end-of-archive record in its last 64 KiB
            raise CheckpointError(f"{path} is truncated ({os.path.getsize(path)} bytes; the zip archive's end "
                                  "record is missing): a save, copy or download that stopped early?") from None
        raise


def _not_tinyvision(zf, path):
    """The error for an intact-looking archive without META: a damaged directory entry (its
    name no longer matches the member's own header), a PyTorch zip, an .npz, or another zip."""
    for info in zf.infolist():
        zf.open(info).close()   # BadZipFile where the directory's name and the member's differ
    with open(path, "rb") as f:
        if META.encode() in f.read():
            return CheckpointError(f"{path} is corrupted: the zip directory has lost its {META} entry")
    names = zf.namelist()
    if any(n.endswith("data.pkl") for n in names):
        return CheckpointError(f"{path} " + _NOT_TINYVISION["pickle"].replace("a Python pickle", "a PyTorch zip"))
    if names and all(n.endswith(".npy") for n in names):
        return CheckpointError(f"{path} is an .npz of arrays (numpy.savez?), not a tinyvision file: "
                               f"no {META} member")
    return CheckpointError(f"{path} is a zip archive, not a tinyvision file: no {META} member")


def _array(zf, name, path):
    if name + ".npy" not in zf.NameToInfo:
        raise CheckpointError(f"{path} is corrupted: the array member {name!r} is missing")
    with zf.open(name + ".npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _decode(node, zf, path):
    if isinstance(node, list):
        return [_decode(v, zf, path) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag == "__array__":
            return _array(zf, value, path)
        if tag == "__tuple__":
            return tuple(_decode(v, zf, path) for v in value)
        if tag == "__dict__":
            return {_decode(k, zf, path): _decode(v, zf, path) for k, v in value}
    return {k: _decode(v, zf, path) for k, v in node.items()}


def load(path):
    """Read a file written by ``save`` and return the saved structure (arrays as NumPy arrays).

    Raises FileNotFoundError when ``path`` does not exist, and CheckpointError (one line that
    names the file) when it is not a tinyvision file (a folder, an empty file, a
    ``.safetensors``, a pickle, a plain ``.npz``, text) or is damaged (truncated: the zip's end
    record is missing; corrupted: a member fails its CRC-32 check or the metadata is broken).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    try:
        with _open(path) as zf:
            if META not in zf.NameToInfo:
                raise _not_tinyvision(zf, path)
            try:
                meta = json.loads(zf.read(META).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{path} is corrupted: unreadable {META} ({exc})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
                raise CheckpointError(f"{path} is not a tinyvision file ({META} does not describe one)")
            if meta.get("version") != VERSION:
                raise CheckpointError(f"{path}: format version {meta.get('version')} is not supported "
                                      f"(this tinyvision reads version {VERSION})")
            return _decode(meta["tree"], zf, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.EINVAL:   # a seek past the start: a broken offset
            raise
        crc = re.fullmatch(r"Bad CRC-32 for file '(.*)'", str(exc))
        what = f"its member {crc.group(1)!r} fails its CRC-32 check (the bytes changed after it was written)" \
            if crc else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path} is corrupted: {what}") from None


def training_checkpoint(state, path, task=None):
    """``state`` (what ``load(path)`` returned) if it is a training checkpoint of ``task``
    (None: a classifier of ``tinyvision train``; 'detect' or 'segment': of ``tinyvision
    detect/segment train``, whose config records its task), else CheckpointError saying what
    it holds instead, and which command reads it. A pretraining task's checkpoint (weights
    under ``backbone.``, with a pretext head) is not a classifier's either."""
    config = state.get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict) or not {"model", "classes"} <= state.keys() \
            or "model" not in config and "task" not in config:
        raise CheckpointError(f"{path} is a tinyvision file but not a training checkpoint (no model, config "
                              "and classes in it)")
    holds = config.get("task")
    if holds != task:
        what = {None: "classifier", "detect": "detection model", "segment": "segmentation model"}
        use = f"python -m tinyvision {holds + ' ' if holds else ''}eval (or predict) {path}"
        raise CheckpointError(f"{path} is a checkpoint of a {what.get(holds, holds)}, not of a "
                              f"{what.get(task, task)}: use {use}")
    if task is None and any(k.startswith("backbone.") for k in state["model"]):
        raise CheckpointError(f"{path} holds a pretraining task around a {config['model']} (backbone weights and "
                              f"a pretext head), not a {config['model']} classifier; fine-tune it first: "
                              f"python -m tinyvision finetune {path}")
    return state


def classifier_checkpoint(state, path):
    """``training_checkpoint`` of a classifier (``tinyvision train``): ``state``, or
    CheckpointError saying what the file holds instead."""
    return training_checkpoint(state, path)
