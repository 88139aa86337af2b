"""DataLoader: batches of (images, labels) Tensors, augmented a whole batch at a time."""
import queue
import threading

import numpy as np

from .. import backend
from ..tensor import Tensor
from .transforms import ToTensor

_to_tensor = ToTensor()


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__`` -> (image (H, W, C), label). Data
            sets with ``data`` (N, H, W, C) and ``targets`` (N,) arrays (CIFAR10, ImageFolder,
            Subset) take a fast path that gathers a batch with one fancy index, with no Python
            loop over samples (their per-item ``transform`` is then not used).
        batch_size, shuffle, drop_last: as in PyTorch.
        seed: seeds the order and the augmentation. Epoch e's order comes from a generator
            seeded with (seed, e) and batch b's augmentation from one seeded with (seed, e, b),
            so a run is reproducible whatever the prefetching, and resuming needs only
            (seed, epoch, batch): ``state_dict``. Default: drawn from tinyvision's generator
            (so ``tv.manual_seed`` fixes it).
        sampler: indices per epoch instead of shuffle (e.g. WeightedRandomSampler); its
            ``set_epoch(e)`` is called before epoch e when it has one.
        transform: batch transform (see ``transforms``) called as transform(images, rng) on
            images (N, H, W, C) as stored. A result that is still uint8, and images without a
            transform, become float32 (N, C, H, W) in [0, 1] (``ToTensor``).
        device: where the batches go ('cpu' or 'cuda'); with 'cuda' the images move to the GPU
            before the transform, so augmentation runs there.
        prefetch: prepare this many batches ahead in a background thread (NumPy releases the GIL
            while it copies and gathers, so augmentation overlaps with the training step).
    Yields:
        images float32 Tensor (N, C, H, W), labels int64 Tensor (N,).

    Each ``iter(loader)`` runs the next epoch from its first batch, except right after
    ``load_state_dict`` of a state taken mid-epoch, which continues that epoch where it stopped.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, sampler=None,
                 transform=None, device=None, prefetch=0):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed = int(backend.generator("cpu").integers(2**62)) if seed is None else int(seed)
        self.sampler, self.transform, self.prefetch = sampler, transform, int(prefetch)
        self.device = backend.check_device(device or backend.get_default_device())
        self.epoch, self._start = 0, 0    # what the next iter() runs: epoch, from batch _start
        self._running = None              # [epoch, batches handed out] while an epoch is iterated

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next ``iter(loader)`` run epoch ``epoch`` (its order and augmentation)."""
        self.epoch, self._start, self._running = int(epoch), 0, None

    def state_dict(self):
        """{'seed', 'epoch', 'batch'}: where the data stream stands. Mid-epoch it names the
        epoch in progress and the batches already handed out; otherwise the next epoch."""
        if self._running is not None:
            return {"seed": self.seed, "epoch": self._running[0], "batch": self._running[1]}
        return {"seed": self.seed, "epoch": self.epoch, "batch": self._start}

    def load_state_dict(self, state):
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
        self._start, self._running = int(state.get("batch", 0)), None

    def _order(self, epoch):
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _batch(self, idx, epoch, b):
        ds = self.dataset
        if hasattr(ds, "data") and hasattr(ds, "targets"):
            images, labels = ds.data[idx], np.asarray(ds.targets)[idx]
        else:
            items = [ds[int(i)] for i in idx]
            images = np.stack([backend.to_numpy(np.asarray(im)) for im, _ in items])
            labels = np.array([label for _, label in items])
        if self.device == "cuda":  # augment on the GPU
            images = backend.to_device(images, "cuda")
        if self.transform is not None:
            images = self.transform(images, np.random.default_rng([self.seed, epoch, b]))
        if images.dtype == np.uint8:
            images = _to_tensor(images)
        return (Tensor(images, dtype=np.float32, device=self.device),
                Tensor(np.asarray(labels, dtype=np.int64), device=self.device))

    def _batches(self, epoch, start):
        order = self._order(epoch)
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for b in range(start, -(-stop // self.batch_size)):
            yield self._batch(order[b * self.batch_size:min((b + 1) * self.batch_size, stop)], epoch, b)

    def __iter__(self):
        epoch, start = self.epoch, self._start
        self.epoch, self._start = epoch + 1, 0
        batches = self._batches(epoch, start)
        if self.prefetch > 0:
            batches = _prefetched(batches, self.prefetch)
        running = self._running = [epoch, start]
        for item in batches:
            running[1] += 1  # counted when handed out: a checkpoint taken now skips this batch
            yield item
        if self._running is running:  # finished: the state now names the next epoch
            self._running = None


def _prefetched(batches, depth):
    """Run a generator in a daemon thread, ``depth`` items ahead; errors re-raise in the caller.
    When the caller stops early (break, or the generator is closed), the thread is told to stop
    instead of waiting forever on a full queue with batches nobody will read."""
    q = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in batches:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
            return
        put(done)

    thread = threading.Thread(target=work, daemon=True, name="tinyvision-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
