"""Class-folder image data sets: ``root/<class>/*.jpg``, read from a directory or a .tar.gz."""
import io
import os
import tarfile

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm")


def _decode(raw, name, size):
    from PIL import Image
    try:
        img = Image.open(io.BytesIO(raw)).convert("RGB")
    except Exception as exc:  # Pillow raises several types for broken files
        raise ValueError(f"cannot decode image {name!r}: {exc}") from None
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _members(source, prefix):
    """(class name, file name, bytes reader) for every image under ``prefix/<class>/`` of a
    directory or a tar.gz (where ``prefix`` may sit under one top folder, as in
    cifar10-jpeg/train/...)."""
    if os.path.isdir(source):
        base = os.path.join(source, prefix) if prefix else source
        if not os.path.isdir(base):
            raise FileNotFoundError(f"no folder {base!r}: expected {source}/{prefix + '/' if prefix else ''}<class>/<image>")
        for cls in sorted(os.listdir(base)):
            folder = os.path.join(base, cls)
            if not os.path.isdir(folder):
                continue
            for fname in sorted(os.listdir(folder)):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    path = os.path.join(folder, fname)
                    yield cls, path, lambda p=path: open(p, "rb").read()
        return
    try:
        tar = tarfile.open(source, "r:*")
        entries = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{source!r} is not a readable tar archive ({exc}); expected a folder or "
                         ".tar.gz with <split>/<class>/<image> files") from None
    with tar:
        for m in entries:
            parts = m.name.split("/")
            if len(parts) < 2 or not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
                continue
            if prefix and (len(parts) < 3 or parts[-3] != prefix):
                continue
            yield parts[-2], m.name, lambda m=m: tar.extractfile(m).read()


def read_image_folder(source, prefix="", size=None):
    """Decode every image of a class-folder tree.

    Args:
        source: a directory, or a .tar/.tar.gz holding the tree.
        prefix: the split folder above the class folders ('train', 'test', or '' for none).
        size: (H, W) to resize to; None requires all images to share one size.
    Returns:
        data uint8 (N, H, W, 3), targets int64 (N,), classes (sorted class-folder names).
    """
    images, names = [], []
    for cls, name, read in _members(source, prefix):
        images.append(_decode(read(), name, size))
        names.append(cls)
    if not images:
        raise ValueError(f"no images found in {source!r}" + (f" under {prefix}/<class>/" if prefix else ""))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images in {source!r} have different sizes {sorted(shapes)[:3]}...; pass size=(H, W)")
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return np.stack(images), np.array([index[c] for c in names], dtype=np.int64), classes


class ImageFolder:
    """A user's class-folder data set, decoded once into memory.

    ``root/<class>/<image>`` (a directory or a .tar.gz); classes are the sorted folder names.
    Attributes: ``data`` uint8 (N, H, W, 3), ``targets`` int64 (N,), ``classes``,
    ``class_to_idx``. ``dataset[i]`` -> (image (H, W, 3) uint8, or transformed; label).
    """

    def __init__(self, root, transform=None, size=None):
        self.root, self.transform = root, transform
        self.data, self.targets, self.classes = read_image_folder(root, "", size)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = self.data[i]
        return (self.transform(img) if self.transform else img), int(self.targets[i])
