"""Tiny CIFAR-10 fixtures in the official file formats, generated at test time."""
import io
import os
import pickle
import tarfile

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar_batches(root, n_train=200, n_test=100, seed=0):
    """A cifar-10-batches-py folder in the official format, with learnable images: each class
    has its own mean colour plus noise."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    colours = rng.integers(30, 225, size=(10, 3))

    def batch(n, label_name):
        labels = rng.integers(0, 10, n)
        imgs = colours[labels][:, :, None, None] + rng.normal(0, 25, size=(n, 3, 32, 32))
        data = np.clip(imgs, 0, 255).astype(np.uint8).reshape(n, 3072)
        return {b"batch_label": label_name.encode(), b"labels": labels.tolist(), b"data": data,
                b"filenames": [f"img_{i}.png".encode() for i in range(n)]}

    per = n_train // 5
    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}"), "wb") as f:
            pickle.dump(batch(per, f"training batch {i} of 5"), f)
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), f)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per}, f)
    return folder


def write_jpeg_copy(path, per_class=3, seed=0):
    """A .tar.gz JPEG copy laid out as cifar10-jpeg/{train,test}/<class>/NNNN.jpg."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for c, name in enumerate(CLASSES):
                for i in range(per_class):
                    img = np.full((32, 32, 3), 20 * c, np.uint8) + rng.integers(0, 5, (32, 32, 3), dtype=np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{name}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def tar_folder(folder, path):
    """Pack a cifar-10-batches-py folder as the official cifar-10-python.tar.gz."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path
