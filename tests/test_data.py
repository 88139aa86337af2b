"""Data: CIFAR-10 readers (official formats and JPEG copies), cache, safety, download,
DataLoader, transforms and samplers."""
import hashlib
import os
import pickle
import threading

import numpy as np
import pytest

import tinyvision as tv
from cifar_fixture import CLASSES, tar_folder, write_cifar_batches, write_jpeg_copy
from loopback import serve
from tinyvision import data
from tinyvision.data import cifar as cifar_module

REAL = os.path.join(os.path.dirname(__file__), "..", "datasets", "cache", "cifar10-jpeg.tar.gz")


@pytest.fixture
def batches(tmp_path):
    return write_cifar_batches(str(tmp_path / "src"), n_train=50, n_test=20)


def test_official_folder_layout_and_pixels(batches, tmp_path):
    ds = data.CIFAR10(batches, train=True, cache_dir=str(tmp_path / "cache"))
    assert ds.data.shape == (50, 32, 32, 3) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64 and len(ds) == 50
    with open(os.path.join(batches, "data_batch_1"), "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    row = raw[b"data"][0]  # channel planes: R[0:1024], G[1024:2048], B[2048:3072]
    np.testing.assert_array_equal(ds.data[0, 0, 1], [row[1], row[1024 + 1], row[2048 + 1]])
    assert ds.targets[0] == raw[b"labels"][0]
    img, label = ds[0]
    assert img.shape == (32, 32, 3) and isinstance(label, int)
    assert len(data.CIFAR10(batches, train=False, cache_dir=str(tmp_path / "cache"))) == 20
    assert ds.classes == tuple(CLASSES)


def test_official_tarball_matches_folder(batches, tmp_path):
    tarball = tar_folder(batches, str(tmp_path / "cifar-10-python.tar.gz"))
    a = data.CIFAR10(tarball, cache_dir=str(tmp_path / "c1"))
    b = data.CIFAR10(batches, cache_dir=str(tmp_path / "c2"))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.targets, b.targets)


def test_jpeg_copy_tarball(tmp_path):
    path = write_jpeg_copy(str(tmp_path / "cifar10-jpeg.tar.gz"))
    train = data.CIFAR10(path, cache_dir=str(tmp_path / "cache"))
    assert train.data.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(train.targets), [3] * 10)
    # class c was drawn around grey level 20 c; JPEG keeps that to a few levels
    assert abs(float(train.data[train.targets == 4].mean()) - 82) < 6


def test_second_load_comes_from_the_cache(batches, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first = data.CIFAR10(batches, cache_dir=cache)
    assert len(os.listdir(cache)) == 1 and os.listdir(cache)[0].endswith(".npz")

    def fail(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")
    monkeypatch.setattr(cifar_module, "_read_official", fail)
    second = data.CIFAR10(batches, cache_dir=cache)
    np.testing.assert_array_equal(first.data, second.data)


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    raw = pickle.dumps({b"data": Evil(), b"labels": [0]})
    with pytest.raises(ValueError, match="refusing to load"):
        cifar_module.load_batch(raw, "data_batch_1")


def test_malicious_batch_file_is_refused_naming_the_file(batches, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    with open(os.path.join(batches, "data_batch_3"), "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(ValueError, match=r"data_batch_3.*refusing to load (posix|nt)\.system"):
        data.CIFAR10(batches, cache_dir=str(tmp_path / "cache"))


def test_unreadable_cache_is_rebuilt(batches, tmp_path):
    cache = tmp_path / "cache"
    first = data.CIFAR10(batches, cache_dir=str(cache))
    (npz,) = cache.iterdir()
    npz.write_bytes(npz.read_bytes()[:1000])                 # e.g. a disk that filled up
    with pytest.warns(UserWarning, match="unreadable CIFAR-10 cache"):
        again = data.CIFAR10(batches, cache_dir=str(cache))
    np.testing.assert_array_equal(again.data, first.data)
    assert data.CIFAR10(batches, cache_dir=str(cache)).data.shape == (50, 32, 32, 3)  # rewritten


def test_folder_holding_the_jpeg_copy_and_unknown_folders(tmp_path):
    (tmp_path / "datasets").mkdir()
    write_jpeg_copy(str(tmp_path / "datasets" / "cifar10-jpeg.tar.gz"), per_class=1)
    assert len(data.CIFAR10(str(tmp_path / "datasets"), train=False, cache_dir=str(tmp_path / "c"))) == 10
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        data.CIFAR10(str(tmp_path / "empty"))


def test_truncated_tarball_gives_a_clear_error(batches, tmp_path):
    tarball = tar_folder(batches, str(tmp_path / "cifar-10-python.tar.gz"))
    with open(tarball, "rb") as f:
        head = f.read(os.path.getsize(tarball) // 2)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(head)
    with pytest.raises(ValueError, match="truncated or corrupt|not a readable"):
        data.CIFAR10(str(broken), cache_dir=str(tmp_path / "cache"))


def test_missing_source_names_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        data.CIFAR10(str(tmp_path / "nowhere"))


@pytest.fixture
def www(tmp_path):
    """A loopback HTTP server over tmp_path/www: yields (folder, base url, server)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as httpd:
        yield root, httpd.url("").rstrip("/"), httpd


@pytest.fixture
def server(www):
    root, base, _ = www
    payload = os.urandom(200_000)
    (root / "file.bin").write_bytes(payload)
    return f"{base}/file.bin", payload


def test_download_resumes_and_checks_md5(server, tmp_path):
    url, payload = server
    dest = str(tmp_path / "file.bin")
    with open(dest + ".part", "wb") as f:
        f.write(payload[:70_000])  # an interrupted earlier attempt
    data.download_url(url, dest, md5=hashlib.md5(payload).hexdigest(), progress=False, timeout=10)
    assert open(dest, "rb").read() == payload and not os.path.exists(dest + ".part")
    with pytest.raises(data.DownloadError, match="md5"):
        data.download_url(url, str(tmp_path / "again.bin"), md5="0" * 32, progress=False, timeout=10)
    assert not os.path.exists(str(tmp_path / "again.bin"))


def test_download_restarts_when_the_server_ignores_range(www, server, tmp_path):
    url, payload = server
    www[2].honour_range = False
    dest = str(tmp_path / "file.bin")
    with open(dest + ".part", "wb") as f:
        f.write(b"stale bytes that must not stay in front")
    data.download_url(url, dest, md5=hashlib.md5(payload).hexdigest(), progress=False, timeout=10)
    assert open(dest, "rb").read() == payload


def test_cifar10_download_true(www, batches, tmp_path, monkeypatch):
    root, base, _ = www
    tarball = tar_folder(batches, str(root / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(cifar_module, "URL", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar_module, "MD5", data.md5sum(tarball))
    target = tmp_path / "downloads"
    ds = data.CIFAR10(str(target), download=True, cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 50 and (target / "cifar-10-python.tar.gz").exists()
    monkeypatch.setattr(cifar_module, "MD5", "0" * 32)        # present: not fetched or checked again
    assert len(data.CIFAR10(str(target), train=False, download=True, cache_dir=str(tmp_path / "cache"))) == 20


# ------------------------------------------------------------------ DataLoader
def test_loader_batches_shapes_and_drop_last(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    loader = data.DataLoader(ds, batch_size=16)
    assert len(loader) == 4
    sizes = [len(y) for _, y in loader]
    assert sizes == [16, 16, 16, 2]
    x, y = next(iter(data.DataLoader(ds, batch_size=16, drop_last=True)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert len(data.DataLoader(ds, batch_size=16, drop_last=True)) == 3


def _epochs(loader, n):
    return [[(x.numpy().copy(), y.numpy().copy()) for x, y in loader] for _ in range(n)]


def _assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (xa, ya), (xb, yb) in zip(got, expected):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_loader_is_reproducible_with_and_without_prefetch(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    aug = data.Compose([data.RandomCrop(32, 4), data.RandomHorizontalFlip(), data.ToTensor()])
    a = _epochs(data.DataLoader(ds, 10, shuffle=True, seed=3, transform=aug), 2)
    b = _epochs(data.DataLoader(ds, 10, shuffle=True, seed=3, transform=aug, prefetch=2), 2)
    for ea, eb in zip(a, b):
        _assert_same_batches(ea, eb)
    assert not np.array_equal(a[0][0][1], a[1][0][1])        # a new order each epoch
    assert sorted(np.concatenate([y for _, y in a[0]])) == sorted(ds.targets)
    loader = data.DataLoader(ds, 10, shuffle=True, seed=3, transform=aug)
    loader.set_epoch(1)
    _assert_same_batches(_epochs(loader, 1)[0], a[1])


def test_loader_resumes_mid_epoch_and_between_epochs(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    aug = data.Compose([data.RandomCrop(32, 4), data.ToTensor()])
    a = _epochs(data.DataLoader(ds, 10, shuffle=True, seed=3, transform=aug), 2)
    loader = data.DataLoader(ds, 10, shuffle=True, seed=3, transform=aug, prefetch=1)
    assert loader.state_dict() == {"seed": 3, "epoch": 0, "batch": 0}
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state == {"seed": 3, "epoch": 0, "batch": 2}
    fresh = data.DataLoader(ds, 10, shuffle=True, seed=99, transform=aug)
    fresh.load_state_dict(state)
    rest = [(x.numpy(), y.numpy()) for x, y in fresh]        # batches 2.. of epoch 0, same crops
    _assert_same_batches(rest, a[0][2:])
    assert fresh.state_dict() == {"seed": 3, "epoch": 1, "batch": 0}
    _assert_same_batches(_epochs(fresh, 1)[0], a[1])
    # a state written by an older version has no 'batch': the epoch starts from its beginning
    fresh.load_state_dict({"seed": 3, "epoch": 1})
    _assert_same_batches(_epochs(fresh, 1)[0], a[1])


def test_loader_with_a_sampler_resumes_the_same_draws(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    weights = data.class_weights(ds.targets, 10)[ds.targets]

    def labels(loader, epochs):
        return [np.concatenate([y.numpy() for _, y in loader]) for _ in range(epochs)]
    sampler = data.WeightedRandomSampler(weights, 30, seed=1)
    a = labels(data.DataLoader(ds, 8, sampler=sampler), 2)
    assert len(a[0]) == 30 and not np.array_equal(a[0], a[1])
    resumed = data.DataLoader(ds, 8, sampler=data.WeightedRandomSampler(weights, 30, seed=1))
    resumed.load_state_dict({"seed": 0, "epoch": 1, "batch": 0})
    np.testing.assert_array_equal(labels(resumed, 1)[0], a[1])


def test_loader_break_stops_the_prefetch_thread(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    before = threading.active_count()
    it = iter(data.DataLoader(ds, 2, prefetch=2))
    next(it)
    assert threading.active_count() == before + 1
    it.close()                                                # what `break` + garbage collection do
    assert threading.active_count() == before


def test_loader_slow_path_and_uint8_transform_output():
    class Items:  # no data/targets arrays: items are fetched one by one
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((4, 4, 3), 51 * i, np.uint8), i % 2
    x, y = next(iter(data.DataLoader(Items(), 5, transform=data.RandomHorizontalFlip())))
    assert x.shape == (5, 3, 4, 4) and x.dtype == np.float32           # uint8 NHWC -> float NCHW
    np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], [0, 0.2, 0.4, 0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(Items(), 0)


def test_loader_prefetch_reraises_errors():
    class Broken:
        data = np.zeros((4, 32, 32, 3), np.uint8)
        targets = np.zeros(4, np.int64)

        def __len__(self):
            return 4

    def bad(x, rng):
        raise RuntimeError("augmentation failed")
    with pytest.raises(RuntimeError, match="augmentation failed"):
        list(data.DataLoader(Broken(), 2, transform=bad, prefetch=1))


# ------------------------------------------------------------------ transforms
@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def test_random_crop_keeps_size_and_shifts(images):
    rng = np.random.default_rng(0)
    out = data.RandomCrop(32, padding=4)(images, rng)
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for n in range(len(images)):  # every crop is a window of the padded image
        assert any(np.array_equal(out[n], padded[n, dy:dy + 32, dx:dx + 32])
                   for dy in range(9) for dx in range(9))
    assert data.RandomCrop(24)(images[0], rng).shape == (24, 24, 3)


def test_flip_flips(images):
    out = data.RandomHorizontalFlip(p=1.0)(images, np.random.default_rng(0))
    np.testing.assert_array_equal(out, images[:, :, ::-1])
    np.testing.assert_array_equal(data.RandomHorizontalFlip(p=0.0)(images), images)


def test_rotation_by_zero_and_ninety_degrees(images):
    np.testing.assert_array_equal(data.RandomRotation(0)(images, np.random.default_rng(0)), images)

    class Fixed:  # a generator stand-in that always draws +90 degrees
        def uniform(self, lo, hi, n):
            return np.full(n, 90.0)
    out = data.RandomRotation(90)(images, Fixed())
    np.testing.assert_array_equal(out[0], np.rot90(images[0], k=1, axes=(0, 1)))


def test_color_jitter_identity_and_range(images):
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(data.ColorJitter()(images, rng), images)
    out = data.ColorJitter(0.4, 0.4, 0.4)(images, rng)
    assert out.dtype == np.uint8 and out.shape == images.shape and not np.array_equal(out, images)


def test_to_tensor_normalize_cutout(images):
    x = data.ToTensor()(images)
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[1, 2, 3, 4], images[1, 3, 4, 2] / 255.0, rtol=1e-6)
    y = data.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(x)
    np.testing.assert_allclose(y, (x - 0.5) / 0.25, rtol=1e-6)
    cut = data.Cutout(8)(np.ones((200, 3, 32, 32), np.float32), np.random.default_rng(0))
    assert ((cut == 0).all(axis=1) == (cut == 0).any(axis=1)).all()        # same square in every channel
    for zero in cut[:, 0] == 0:                                             # a filled 8x8 square,
        rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))   # clipped at the border
        assert zero.sum() == len(rows) * len(cols) and len(rows) <= 8 and len(cols) <= 8
        assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
        if 0 < rows[0] and rows[-1] < 31:
            assert len(rows) == 8
    with pytest.raises(ValueError, match="apply ToTensor first"):
        data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)(images)
    with pytest.raises(ValueError, match="at least 40 pixels"):
        data.RandomCrop(48, padding=4)(images)


@pytest.mark.gpu
def test_transforms_on_the_gpu_match_the_cpu(images):
    cp = tv.backend.cupy()
    aug = data.Compose([data.RandomCrop(32, 4), data.RandomHorizontalFlip(), data.RandomRotation(15),
                        data.ColorJitter(0.4, 0.4, 0.4), data.ToTensor(),
                        data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD), data.Cutout(8)])
    cpu = aug(images, np.random.default_rng(0))
    gpu = aug(cp.asarray(images), np.random.default_rng(0))
    assert isinstance(gpu, cp.ndarray)
    # colour rounding may move a value by one level, and a rotated coordinate within an ulp of
    # a rounding tie may pick the neighbouring pixel: almost all values agree
    assert np.isclose(cp.asnumpy(gpu), cpu, atol=1.5 / 255 / 0.24).mean() > 0.999
    x, y = next(iter(data.DataLoader(_Arrays(images), 3, transform=aug, device="cuda", seed=0)))
    assert x.device == "cuda" and y.device == "cuda" and x.shape == (3, 3, 32, 32)


class _Arrays:
    def __init__(self, images):
        self.data, self.targets = images, np.arange(len(images)) % 10

    def __len__(self):
        return len(self.targets)


def test_transforms_are_reproducible_under_manual_seed(images):
    aug = data.Compose([data.RandomCrop(32, 4), data.RandomHorizontalFlip(), data.ToTensor()])
    tv.manual_seed(5)
    a = aug(images)
    tv.manual_seed(5)
    np.testing.assert_array_equal(aug(images), a)


# ------------------------------------------------------------------ sampling and subsets
def test_class_weights_and_imbalance():
    targets = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = data.class_weights(targets, 3)
    np.testing.assert_allclose(w / w[0], [1, 2, 6], rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    balanced = np.repeat(np.arange(10), 100)
    idx = data.make_imbalanced(balanced, imbalance_factor=10, seed=0)
    counts = np.bincount(balanced[idx])
    assert counts[0] == 100 and counts[-1] == 10 and (np.diff(counts) <= 0).all()


def test_make_imbalanced_ratios_and_stratified_split(batches, tmp_path):
    balanced = np.repeat(np.arange(4), 10)
    idx = data.make_imbalanced(balanced, ratios=[1.0, 0.5, 0.25, 0.0], seed=0)
    np.testing.assert_array_equal(np.bincount(balanced[idx], minlength=4), [10, 5, 2, 0])  # 2.5 rounds to 2
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    assert len(data.make_imbalanced(ds, imbalance_factor=1.0)) == 10 * np.bincount(ds.targets).min()
    with pytest.raises(ValueError, match="one fraction in"):
        data.make_imbalanced(balanced, ratios=[1.0, 0.5])
    rest, held = data.stratified_split(balanced, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(balanced[held]), [2, 2, 2, 2])
    assert len(np.intersect1d(rest, held)) == 0 and len(rest) + len(held) == 40


def test_random_and_sequential_samplers():
    assert list(data.SequentialSampler(4)) == [0, 1, 2, 3]
    s = data.RandomSampler(10, seed=0)
    first, second = list(s), list(s)
    assert sorted(first) == list(range(10)) and first != second           # each pass draws anew
    s.set_epoch(0)
    assert list(s) == first                                               # epoch 0 again: same order
    draws = list(data.RandomSampler(3, replacement=True, num_samples=50, seed=0))
    assert len(draws) == 50 and set(draws) == {0, 1, 2}
    with pytest.raises(ValueError, match="without replacement"):
        data.RandomSampler(3, num_samples=5)


def test_weighted_sampler_follows_weights():
    sampler = data.WeightedRandomSampler([1.0, 3.0, 0.0], num_samples=4000, seed=0)
    counts = np.bincount(list(sampler), minlength=3)
    assert counts[2] == 0 and 2.7 < counts[1] / counts[0] < 3.3
    with pytest.raises(ValueError, match="non-negative"):
        data.WeightedRandomSampler([-1.0, 1.0], 3)


def test_subset_and_per_class_subset(batches, tmp_path):
    ds = data.CIFAR10(batches, cache_dir=str(tmp_path / "c"))
    idx = data.per_class_subset(ds.targets, 2)
    sub = data.Subset(ds, idx)
    assert (np.bincount(sub.targets, minlength=10) <= 2).all()
    np.testing.assert_array_equal(sub.data[0], ds.data[idx[0]])
    assert len(next(iter(data.DataLoader(sub, batch_size=4)))[1]) == 4


def test_image_folder(tmp_path):
    from PIL import Image
    for cls, grey in (("cats", 10), ("dogs", 200)):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 10, 3), grey, np.uint8)).save(tmp_path / "pets" / cls / f"{i}.png")
    ds = data.ImageFolder(str(tmp_path / "pets"))
    assert ds.classes == ["cats", "dogs"] and ds.class_to_idx == {"cats": 0, "dogs": 1}
    assert ds.data.shape == (4, 8, 10, 3) and list(ds.targets) == [0, 0, 1, 1]
    assert data.ImageFolder(str(tmp_path / "pets"), size=(4, 4)).data.shape == (4, 4, 4, 3)


@pytest.mark.slow
def test_real_cifar10_jpeg_copy():
    if not os.path.exists(REAL):
        pytest.skip("CIFAR-10 JPEG copy not found at datasets/cache/cifar10-jpeg.tar.gz (see shared/datasets/README.md)")
    train, test = data.CIFAR10(REAL), data.CIFAR10(REAL, train=False)
    assert len(train) == 50000 and len(test) == 10000
    np.testing.assert_array_equal(np.bincount(train.targets), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(test.targets), [1000] * 10)
    # the per-channel means of the training images are the published CIFAR-10 constants
    # (JPEG moves them by a fraction of a grey level)
    mean = train.data[::10].reshape(-1, 3).mean(axis=0) / 255
    np.testing.assert_allclose(mean, data.CIFAR10_MEAN, atol=0.005)


def test_random_crop_draws_every_offset_including_the_largest():
    """Over many images each of the 2p + 1 offsets per axis occurs, the extremes 0 and 2p too
    (an off-by-one in the draw, integers(0, ny - 1), would never move an image by -p)."""
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    image = (rows * 8 + cols + 1).astype(np.uint8)[:, :, None]    # each pixel names its place
    out = data.RandomCrop(8, padding=2)(np.repeat(image[None], 300, axis=0), np.random.default_rng(1))
    offsets = set()
    for window in out[:, :, :, 0]:
        r, c = np.argwhere(window)[0]                                # a pixel of the image, not padding
        v = int(window[r, c]) - 1                                    # at image row v // 8, column v % 8
        offsets.add((v // 8 - r + 2, v % 8 - c + 2))                 # the window's top-left in the padded image
    assert {dy for dy, _ in offsets} == set(range(5)) and {dx for _, dx in offsets} == set(range(5))
