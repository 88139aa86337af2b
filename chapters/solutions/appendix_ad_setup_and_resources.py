"""Solutions to the exercises of appendices A and D (chapters/appendix_ad_setup_and_resources.ipynb,
"Exercises").

Try each exercise before reading its solution. Each name here replaces the stub of the same
name in the notebook; ``check.NAME(...)`` there then prints PASS.
"""
import hashlib
import os

from PIL import Image

import tinyvision as tv

# Exercise 1. The chapters' mode, tinyvision's thread count and the reference switch are all
# read from the environment when a process starts (values are strings).
smoke_test_env = {"TINYVISION_QUICK": "1", "TINYVISION_NUM_THREADS": "1", "TINYVISION_REFERENCE": "1"}


def file_md5(path, chunk=2 ** 20):
    """MD5 updated chunk by chunk: memory stays at one chunk whatever the file's size."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def write_image_copy(folder, split, images, labels):
    """PNG, lossless, so the copy reads back exactly (JPEG at any quality changes pixels: the
    project's JPEG copy of CIFAR-10 differs slightly from the official release for that reason)."""
    for i, (image, label) in enumerate(zip(images, labels)):
        target = os.path.join(folder, split, tv.data.CLASSES[int(label)])
        os.makedirs(target, exist_ok=True)
        Image.fromarray(image).save(os.path.join(target, f"{i:05d}.png"))
