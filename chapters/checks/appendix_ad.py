"""Self-checks of the exercises of appendices A and D (setting up tinyvision): the environment
of a smoke test, a file's MD5, a CIFAR-10 copy in the image-folder layout."""
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np

import tinyvision as tv

from . import self_check

CHAPTERS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@self_check
def smoke_test_env(env):
    """Exercise: environment variables for QUICK mode, one thread, the reference path; checked in
    a fresh process."""
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return False, "expected a dict of strings to strings, e.g. {'NAME': '1'} (environment values are strings)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TINYVISION_")}
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import _common as C, tinyvision as tv; "
             "print(C.MODE, tv.get_num_threads(), tv.kernels.reference_enabled())")
    run = subprocess.run([sys.executable, "-c", probe, CHAPTERS], env={**clean, **env},
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        lines = run.stderr.strip().splitlines()
        return False, f"the process failed: {lines[-1] if lines else 'exit status ' + str(run.returncode)}"
    mode, threads, reference = run.stdout.split()
    wrong = [what for what, ok in (("mode " + mode + ", not quick (TINYVISION_QUICK)", mode == "quick"),
                                   (threads + " threads, not 1 (TINYVISION_NUM_THREADS)", threads == "1"),
                                   ("reference path off (TINYVISION_REFERENCE)", reference == "True")) if not ok]
    if wrong:
        return False, "the process saw " + "; ".join(wrong)
    return True, "a fresh process saw quick mode, 1 thread and the reference path"


@self_check
def file_md5(fn):
    """Exercise: a file's MD5 in hexadecimal, against hashlib on a 2.5 MB file and an empty one."""
    with tempfile.TemporaryDirectory() as tmp:
        big, empty = os.path.join(tmp, "big.bin"), os.path.join(tmp, "empty.bin")
        payload = np.random.default_rng(6).integers(0, 256, 5 * 2 ** 19, dtype=np.uint8).tobytes()
        with open(big, "wb") as f:
            f.write(payload)
        open(empty, "wb").close()
        got = fn(big)
        if got is None:
            return False, "file_md5 returned None; return hashlib's hexdigest()"
        if isinstance(got, bytes):
            return False, "you returned the raw digest (bytes); return the 32 hexadecimal digits (hexdigest())"
        expected = hashlib.md5(payload).hexdigest()
        if str(got).lower() != expected:
            return False, (f"got {got!r} for a 2.5 MB file, expected {expected}: did you hash every chunk "
                           "(update in a loop until read() returns b'')?")
        if str(fn(empty)).lower() != hashlib.md5(b"").hexdigest():
            return False, "an empty file's MD5 is d41d8cd98f00b204e9800998ecf8427e"
    return True, "your MD5 matches hashlib's on a 2.5 MB file and an empty one"


@self_check
def write_image_copy(fn):
    """Exercise: write images in the train/<class>/ layout; load_cifar10 must read back the same
    images and labels."""
    rng = np.random.default_rng(7)
    data = {split: (rng.integers(0, 256, (10 * k, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(10), k))
            for split, k in (("train", 2), ("test", 1))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "copy")
        for split, (images, labels) in data.items():
            fn(folder, split, images.copy(), labels.copy())
        if not os.path.isdir(os.path.join(folder, "train")):
            return False, f"no train/ folder was written under the folder given ({sorted(os.listdir(tmp))})"
        try:
            loaded = tv.data.load_cifar10(folder, cache_dir=os.path.join(tmp, "cache"))
        except (ValueError, OSError) as err:
            return False, f"tv.data.load_cifar10 could not read it: {err}"
    for split, (images, labels) in data.items():
        got_images, got_labels = loaded[split]
        if len(got_labels) != len(labels) or np.any(np.bincount(got_labels, minlength=10) != np.bincount(labels)):
            return False, (f"{split}: read back {np.bincount(got_labels, minlength=10).tolist()} images per class, "
                           f"wrote {np.bincount(labels).tolist()}: is each image in its label's class folder?")
        key = lambda im, lab: sorted((int(l), i.tobytes()) for i, l in zip(im, lab))
        if key(got_images, got_labels) != key(images, labels):
            worst = max(np.abs(np.sort(got_images[got_labels == c].astype(int).ravel())
                               - np.sort(images[labels == c].astype(int).ravel())).max() for c in range(10))
            return False, (f"{split}: the images read back differ from those written (by up to {worst} levels): "
                           "JPEG is lossy; a lossless format (PNG) keeps every pixel")
    return True, "tv.data.load_cifar10 read back every image and label exactly"
