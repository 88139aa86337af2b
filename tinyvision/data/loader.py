"""DataLoader: batches of (images, labels) Tensors, augmented a whole batch at a time."""
import queue
import threading

import numpy as np

from .. import backend
from ..tensor import Tensor


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__`` -> (image, label); data sets with
            ``data`` (N, H, W, C) and ``targets`` arrays (CIFAR10, ImageFolder, Subset) take a
            fast path that gathers a batch with one fancy index.
        batch_size, shuffle, drop_last: as in PyTorch.
        seed: seeds the order and the augmentation. Epoch e's order and batch b's augmentation
            come from generators seeded with (seed, e) and (seed, e, b), so a run is reproducible
            whatever the prefetching, and resuming needs only the epoch number (``state_dict``).
        sampler: an iterable of indices per epoch (e.g. WeightedRandomSampler) instead of shuffle.
        transform: batch transform (see ``transforms``) called as transform(images, rng); without
            one, uint8 images become float32 (N, C, H, W) in [0, 1].
        device: where the batches go ('cpu' or 'cuda').
        prefetch: prepare this many batches ahead in a background thread (NumPy releases the GIL
            while it copies and gathers, so augmentation overlaps with the training step).
    Yields:
        images float32 Tensor (N, C, H, W), labels int64 Tensor (N,).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, sampler=None,
                 transform=None, device=None, prefetch=0):
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed = int(backend.generator("cpu").integers(2**62)) if seed is None else int(seed)
        self.sampler, self.transform, self.prefetch = sampler, transform, int(prefetch)
        self.device = backend.check_device(device or backend.get_default_device())
        self.epoch = 0

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    def _order(self, epoch):
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _batch(self, idx, epoch, b):
        ds = self.dataset
        if hasattr(ds, "data") and hasattr(ds, "targets"):
            images, labels = ds.data[idx], np.asarray(ds.targets)[idx]
        else:
            items = [ds[int(i)] for i in idx]
            images, labels = np.stack([np.asarray(im) for im, _ in items]), np.array([l for _, l in items])
        if self.device == "cuda":  # augment on the GPU
            images = backend.to_device(images, "cuda")
        rng = np.random.default_rng([self.seed, epoch, b])
        if self.transform is not None:
            images = self.transform(images, rng)
        elif images.dtype == np.uint8:
            xp = backend.array_module(images)
            images = xp.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        return (Tensor(images, dtype=np.float32, device=self.device),
                Tensor(labels.astype(np.int64), device=self.device))

    def _batches(self, epoch):
        order = self._order(epoch)
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for b, start in enumerate(range(0, stop, self.batch_size)):
            yield self._batch(order[start:start + self.batch_size], epoch, b)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        if self.prefetch <= 0:
            return self._batches(epoch)
        return _prefetched(self._batches(epoch), self.prefetch)


def _prefetched(batches, depth):
    """Run a generator in a daemon thread, ``depth`` items ahead; errors re-raise in the caller."""
    q = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in batches:
                q.put(item)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)
        q.put(done)

    threading.Thread(target=work, daemon=True, name="tinyvision-prefetch").start()
    while True:
        item = q.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
