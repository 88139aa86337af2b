"""CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test images, 32x32 RGB, 10 classes.

Accepted sources (``root``):
- the official python version, ``cifar-10-python.tar.gz``, or a folder holding it;
- its extracted ``cifar-10-batches-py/`` folder (pickled dicts: b'data' uint8 (10000, 3072)
  stored channel-major, row-major inside each channel; b'labels' a list of ints);
- a JPEG/PNG copy laid out as ``train/<class>/*`` and ``test/<class>/*``, as a folder or a
  .tar.gz (for example the packed cifar10-jpeg.tar.gz), or a folder holding
  ``cifar10-jpeg.tar.gz`` or ``cifar10-jpeg/``.
Labels follow the alphabetical class order of ``CLASSES`` (the official label numbering).

Decoded arrays are cached once as ``.npz`` (no pickle) keyed on the source's path, size and
modification time, so the next load reads two arrays instead of 60,000 files.

``resolve_cifar10`` is how the command line finds its data: the ``--data`` path, else a copy
already in ``datasets/cache/``, else the official archive downloaded there.
"""
import hashlib
import io
import os
import pickle
import tarfile
import warnings
import zipfile
import zlib

import numpy as np

from ..errors import InputError
from ..fileio import atomic_open
from .download import DownloadError, download_url
from .folder import read_image_folder

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
JPEG_COPY = "cifar10-jpeg"
CACHE = os.path.join("datasets", "cache")
# what resolve_cifar10 looks for in CACHE, in this order: the JPEG copy developers make first
_CACHED = (JPEG_COPY + ".tar.gz", ARCHIVE, "cifar-10-batches-py")
_ALTERNATIVES = (f"the official {ARCHIVE}, its extracted cifar-10-batches-py folder, or the JPEG copy "
                 "described in datasets/README.md")
_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


class _BatchUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch is made of (dicts, lists, bytes and NumPy arrays):
    a pickle that names any other callable is refused before it can run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only "
                                     "dicts, lists, bytes and arrays")


def load_batch(raw, name):
    """One pickled batch (its bytes, and its file name for errors) -> (images uint8
    (N, 32, 32, 3), labels int64 (N,))."""
    try:
        d = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"CIFAR batch {name!r} is corrupt or not a CIFAR-10 batch "
                         f"(expected a pickled dict with b'data' and b'labels'): {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"CIFAR batch {name!r}: expected data (N, 3072) and N labels, got "
                         f"{data.shape} and {len(labels)}")
    # rows are [R plane | G plane | B plane] of 32x32 each -> (N, 3, 32, 32) -> (N, 32, 32, 3)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _read_official(source):
    """{'train': (x, y), 'test': (x, y)} from the tarball or the extracted folder."""
    if os.path.isdir(source):
        def read(name):
            path = os.path.join(source, name)
            if not os.path.exists(path):
                raise FileNotFoundError(f"missing CIFAR-10 batch {path}")
            with open(path, "rb") as f:
                return f.read(), path
    else:
        try:
            tar = tarfile.open(source, "r:gz")
            members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValueError(f"{source!r} is not a readable cifar-10-python.tar.gz ({exc}); "
                             "delete it and download again") from None

        def read(name):
            if name not in members:
                raise ValueError(f"{source!r} has no member {name}: not the CIFAR-10 python version")
            try:
                return tar.extractfile(members[name]).read(), f"{source}:{members[name].name}"
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise ValueError(f"{source!r} is truncated or corrupt while reading {name}: {exc}") from None
    train = [load_batch(*read(n)) for n in _TRAIN_BATCHES]
    test = load_batch(*read("test_batch"))
    return {"train": (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])),
            "test": test}


def _read_image_copy(source):
    out = {}
    for split in ("train", "test"):
        data, targets, classes = read_image_folder(source, split)
        if tuple(classes) != CLASSES:
            raise ValueError(f"{source!r}/{split}: expected the 10 CIFAR-10 class folders {CLASSES}, "
                             f"found {classes}")
        out[split] = (data, targets)
    return out


def locate(root):
    """(kind, path) of the CIFAR-10 source under ``root``: 'official' or 'images'."""
    if not os.path.exists(root):
        raise FileNotFoundError(
            f"CIFAR-10 not found at {root!r}: pass {_ALTERNATIVES}; to download the official "
            "archive, leave out --data (command line) or pass download=True (Python)")
    if os.path.isdir(root):
        for candidate in (os.path.join(root, "cifar-10-batches-py"), root):
            if os.path.exists(os.path.join(candidate, "data_batch_1")):
                return "official", candidate
        if os.path.exists(os.path.join(root, ARCHIVE)):
            return "official", os.path.join(root, ARCHIVE)
        if os.path.isdir(os.path.join(root, "train")):
            return "images", root
        for name in (JPEG_COPY, JPEG_COPY + ".tar.gz"):  # a folder holding the JPEG copy
            if os.path.exists(os.path.join(root, name)):
                return locate(os.path.join(root, name))
        raise FileNotFoundError(
            f"no CIFAR-10 in the folder {root!r}: expected {ARCHIVE}, cifar-10-batches-py/ "
            f"(data_batch_1..5, test_batch), train/<class>/ and test/<class>/ image folders, "
            f"or {JPEG_COPY}.tar.gz")
    with open(root, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise ValueError(f"{root!r} is not a .tar.gz archive")
    try:
        with tarfile.open(root, "r:gz") as tar:
            first = tar.next()
            while first is not None and not first.isfile():
                first = tar.next()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{root!r} is truncated or corrupt: {exc}") from None
    if first is not None and "cifar-10-batches-py" in first.name:
        return "official", root
    return "images", root


def _cache_path(path, cache_dir):
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    name = f"cifar10-{key}.npz"
    for folder in ([cache_dir] if cache_dir else
                   [os.path.join(os.path.dirname(os.path.abspath(path)), ".tinyvision-cache"),
                    os.path.join(os.path.expanduser("~"), ".cache", "tinyvision")]):
        try:
            os.makedirs(folder, exist_ok=True)
            if os.access(folder, os.W_OK):
                return os.path.join(folder, name)
        except OSError:
            continue
    return None


def _read_cache(cache, splits):
    """The cached splits, or None when the cache file is missing or unreadable (a partial or
    foreign file is then decoded again and replaced)."""
    if not (cache and os.path.exists(cache)):
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            out = {s: (z[f"{s}_x"], z[f"{s}_y"]) for s in splits}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        warnings.warn(f"ignoring the unreadable CIFAR-10 cache {cache} ({exc}); decoding again")
        return None
    if any(x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or len(x) != len(y) for x, y in out.values()):
        warnings.warn(f"ignoring the CIFAR-10 cache {cache}: unexpected arrays; decoding again")
        return None
    return out


def _write_cache(cache, decoded):
    """Write the arrays as .npz (no pickles) through ``atomic_open``: a reader never sees half a
    file and concurrent writers cannot collide."""
    try:
        with atomic_open(cache) as f:
            np.savez(f, **{f"{s}_{k}": a for s, (x, y) in decoded.items() for k, a in (("x", x), ("y", y))})
    except OSError as exc:  # a full disk: the data are decoded, the next load decodes again
        warnings.warn(f"could not write the CIFAR-10 cache {cache}: {exc}")


def load_cifar10(root, cache_dir=None, splits=("train", "test")):
    """CIFAR-10 as uint8 arrays, decoded once and cached.

    Inputs:
        root: any source ``locate`` accepts.
        cache_dir: folder for the .npz cache (default: .tinyvision-cache next to the source,
            else ~/.cache/tinyvision; no cache when neither is writable).
        splits: which of 'train' and 'test' to return (a cache hit reads only those).
    Returns:
        {split: (images uint8 (N, 32, 32, 3), labels int64 (N,))}.
    """
    kind, path = locate(root)
    cache = _cache_path(path, cache_dir)
    cached = _read_cache(cache, splits)
    if cached is not None:
        return cached
    decoded = _read_official(path) if kind == "official" else _read_image_copy(path)
    if cache:
        _write_cache(cache, decoded)
    return {s: decoded[s] for s in splits}


def cifar10_source():
    """(url, md5) of the official archive: ``URL`` and ``MD5``, overridden by the environment's
    TINYVISION_CIFAR10_URL and TINYVISION_CIFAR10_MD5 (mirrors, firewalls, tests; an empty MD5
    skips the check)."""
    return os.environ.get("TINYVISION_CIFAR10_URL") or URL, os.environ.get("TINYVISION_CIFAR10_MD5", MD5)


def download_cifar10(folder, progress=True):
    """Download the official archive into ``folder`` unless it is there; returns its path.

    The URL and md5 come from ``cifar10_source``; a failure is a one-line DownloadError that
    also says what to pass instead.
    """
    path = os.path.join(folder, ARCHIVE)
    if os.path.exists(path):
        return path
    url, md5 = cifar10_source()
    os.makedirs(folder, exist_ok=True)
    try:
        return download_url(url, path, md5=md5, progress=progress)
    except DownloadError as err:
        raise DownloadError(f"{err}; alternatively pass --data PATH (Python: CIFAR10(PATH)) naming "
                            f"{_ALTERNATIVES}") from None


def resolve_cifar10(path=None, download=True, progress=True):
    """The CIFAR-10 source the command line should read.

    ``path`` (the user's --data) is returned if it exists. Without one, the first of
    cifar10-jpeg.tar.gz, cifar-10-python.tar.gz and cifar-10-batches-py/ found in
    ``datasets/cache/`` under the current folder, else (``download``) the official archive
    downloaded there, so a fresh machine needs no setup.
    Raises InputError for a missing ``path`` or, with download=False, when nothing is found;
    DownloadError (an OSError) when the download fails.
    """
    if path is not None:
        if os.path.exists(path):
            return path
        raise InputError(f"--data {path}: no such file or folder; expected {_ALTERNATIVES}, or leave out "
                         f"--data to download CIFAR-10 into {CACHE}")
    for name in _CACHED:
        candidate = os.path.join(CACHE, name)
        if os.path.exists(candidate):
            return candidate
    if not download:
        raise InputError(f"no CIFAR-10 found in {os.path.abspath(CACHE)} (looked for {', '.join(_CACHED)}) "
                         f"and --no-download prevented the download; pass --data PATH naming {_ALTERNATIVES}")
    return download_cifar10(CACHE, progress)


class CIFAR10:
    """CIFAR-10 in memory: ``data`` uint8 (N, 32, 32, 3), ``targets`` int64 (N,), ``classes``.

    Args:
        root: the data's location (see the module docstring); with download=True, a folder to
            download the official archive into.
        train: the 50,000 training images, else the 10,000 test images.
        download: when ``root`` holds no CIFAR-10, fetch the official archive into it
            (``download_cifar10``: md5-checked, resumable).
        transform: applied to single images by ``dataset[i]`` (the DataLoader applies its
            own batch transform to many at once).
        cache_dir: where decoded arrays are cached (default: next to the source, else
            ~/.cache/tinyvision).
    """

    classes = CLASSES

    def __init__(self, root, train=True, download=False, transform=None, cache_dir=None):
        if download and not os.path.isfile(root):
            try:
                locate(root)
            except FileNotFoundError:
                download_cifar10(root)
        self.root, self.train, self.transform = root, train, transform
        split = "train" if train else "test"
        self.data, self.targets = load_cifar10(root, cache_dir, splits=(split,))[split]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self.data[i]
        return (self.transform(img) if self.transform else img), int(self.targets[i])

    def __repr__(self):
        return f"CIFAR10(root={self.root!r}, split={'train' if self.train else 'test'}, n={len(self)})"
