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
import json
import os
import zipfile

import numpy as np

from . import backend
from .fileio import atomic_open
from .tensor import Tensor

FORMAT, VERSION = "tinyvision", 1
META = "__meta__.json"
_TAGS = ("__array__", "__tuple__", "__dict__")


class SerializationError(ValueError):
    """The file is not a tinyvision checkpoint, or it is corrupt."""


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
def _decode(node, npz, path):
    if isinstance(node, list):
        return [_decode(v, npz, path) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag == "__array__":
            if value not in npz.files:
                raise SerializationError(f"{path}: corrupt file, the array member {value!r} is missing")
            return npz[value]
        if tag == "__tuple__":
            return tuple(_decode(v, npz, path) for v in value)
        if tag == "__dict__":
            return {_decode(k, npz, path): _decode(v, npz, path) for k, v in value}
    return {k: _decode(v, npz, path) for k, v in node.items()}


def load(path):
    """Read a file written by ``save`` and return the saved structure (arrays as NumPy arrays).

    Raises FileNotFoundError when ``path`` does not exist and SerializationError when it is
    not a tinyvision file or is corrupt (truncated, bad checksums, inconsistent metadata).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    if not zipfile.is_zipfile(path):
        raise SerializationError(f"{path}: not a tinyvision file (not a zip/npz archive), or a truncated one")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if META not in npz.files:
                raise SerializationError(f"{path}: not a tinyvision file (no {META} member; "
                                         "an .npz written by numpy.savez?)")
            try:
                meta = json.loads(npz[META].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SerializationError(f"{path}: corrupt file, unreadable {META} ({exc})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
                raise SerializationError(f"{path}: not a tinyvision file ({META} does not describe one)")
            if meta.get("version") != VERSION:
                raise SerializationError(f"{path}: format version {meta.get('version')} is not supported "
                                         f"(this tinyvision reads version {VERSION})")
            return _decode(meta["tree"], npz, path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, (SerializationError, FileNotFoundError)):
            raise
        raise SerializationError(f"{path}: corrupt file ({type(exc).__name__}: {exc})") from None
