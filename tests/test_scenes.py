"""Generated scenes (determinism, consistency of boxes, masks and labels, cache), annotation
readers on generated COCO/VOC fixtures, and drawing."""
import json

import numpy as np
import pytest

from tinyvision.tasks import annotations, draw
from tinyvision.tasks.scenes import SceneDataset, make_scenes, normalize, scene_splits

from cifar_fixture import write_cifar_batches


def _sources(n=60, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, classes, n)


def _inside(boxes, ys, xs):
    hit = np.zeros(len(ys), bool)
    for x1, y1, x2, y2 in boxes:
        hit |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
    return hit


def test_scenes_are_deterministic_and_seed_dependent():
    imgs, labels = _sources()
    a, b = make_scenes(imgs, labels, 20, seed=3), make_scenes(imgs, labels, 20, seed=3)
    c = make_scenes(imgs, labels, 20, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["images"], c["images"])


def test_boxes_contain_masks_and_labels_agree():
    imgs, labels = _sources()
    s = make_scenes(imgs, labels, 40, seed=1, min_size=16, max_size=40)
    ds = SceneDataset(s, [str(i) for i in range(5)])
    counts = np.diff(s["offsets"])
    assert counts.min() >= 1 and counts.max() <= 4 and s["offsets"][-1] == len(s["boxes"])
    w, h = s["boxes"][:, 2] - s["boxes"][:, 0], s["boxes"][:, 3] - s["boxes"][:, 1]
    assert w.min() >= 16 and w.max() <= 40 and h.min() >= 16 and h.max() <= 40
    assert s["boxes"].min() >= 0 and s["boxes"].max() <= 64
    for i in range(len(ds)):
        _, t = ds[i]
        ys, xs = np.nonzero(t["mask"])
        assert _inside(t["boxes"], ys, xs).all()
        assert set(np.unique(t["mask"][ys, xs]) - 1) <= set(t["labels"].tolist())
        for box, k in zip(t["boxes"], t["labels"]):        # every object stays visible
            x1, y1, x2, y2 = box.astype(int)
            assert (t["mask"][y1:y2, x1:x2] == k + 1).mean() > 0.4


def test_flip_mirrors_boxes_and_masks_together():
    imgs, labels = _sources()
    ds = SceneDataset(make_scenes(imgs, labels, 6, seed=2), [str(i) for i in range(5)])
    x, targets = ds.batch(np.arange(6), flip=np.array([True, False] * 3))
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], normalize(ds.images[:1, :, ::-1])[0])
    for t in targets:
        ys, xs = np.nonzero(t["mask"])
        assert _inside(t["boxes"], ys, xs).all()
    assert np.array_equal(targets[0]["mask"], ds.masks[0][:, ::-1])


def test_save_load_round_trip(tmp_path):
    imgs, labels = _sources()
    ds = SceneDataset(make_scenes(imgs, labels, 5, seed=0), list("abcde"))
    ds.save(tmp_path / "s.npz")
    back = SceneDataset.load(tmp_path / "s.npz")
    assert back.classes == list("abcde")
    for k in ("images", "masks", "boxes", "labels", "offsets"):
        assert np.array_equal(getattr(back, k), getattr(ds, k))


def test_bad_inputs_raise():
    imgs, labels = _sources()
    with pytest.raises(ValueError, match="uint8"):
        make_scenes(imgs.astype(np.float32), labels, 2)
    with pytest.raises(ValueError, match="labels"):
        make_scenes(imgs, labels[:3], 2)
    with pytest.raises(ValueError, match="min_size"):
        make_scenes(imgs, labels, 2, min_size=50, max_size=40)


def test_scene_splits_use_both_splits_and_cache(tmp_path):
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    cache = tmp_path / "scenes"
    train, test = scene_splits(str(root), 8, 4, seed=0, cache_dir=str(cache))
    assert (len(train), len(test)) == (8, 4) and train.num_classes == 10
    assert len(list(cache.glob("*.npz"))) == 2
    again, _ = scene_splits(str(root), 8, 4, seed=0, cache_dir=str(cache))
    assert np.array_equal(again.images, train.images) and np.array_equal(again.boxes, train.boxes)
    two, _ = scene_splits(str(root), 8, 4, seed=0, classes=[3, 1], cache_dir=str(cache))
    assert two.classes == ["cat", "automobile"] and set(two.labels.tolist()) <= {0, 1}
    assert set(np.unique(two.masks).tolist()) <= {0, 1, 2}


# ---------------------------------------------------------------- annotation readers
def test_coco_reader_boxes_labels_and_polygon_masks(tmp_path):
    coco = {"images": [{"id": 7, "file_name": "a.jpg", "width": 20, "height": 10},
                       {"id": 8, "file_name": "b.jpg", "width": 5, "height": 5}],
            "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [2, 1, 4, 5],
                             "segmentation": [[2, 1, 6, 1, 6, 6, 2, 6]]},
                            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [10, 0, 3, 3]}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    records, names = annotations.read_coco(path)
    assert names == ["cat", "dog"]                          # ordered by category id
    r = records[0]
    np.testing.assert_array_equal(r["boxes"], [[2, 1, 6, 6], [10, 0, 13, 3]])
    np.testing.assert_array_equal(r["labels"], [1, 0])
    assert r["mask"].shape == (10, 20)
    assert (r["mask"][1:7, 2:7] == 2).all() and r["mask"].sum() == 2 * 6 * 5   # filled rectangle incl. edges
    assert records[1]["boxes"].shape == (0, 4) and records[1]["mask"] is None


def test_coco_reader_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO"):
        annotations.read_coco(path)
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a", "width": 4, "height": 4}],
                                "categories": [{"id": 1, "name": "x"}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                                 "segmentation": {"counts": "abc", "size": [4, 4]}}]}))
    with pytest.raises(ValueError, match="RLE"):
        annotations.read_coco(path)


VOC = """<annotation><filename>{f}</filename><size><width>50</width><height>40</height><depth>3</depth></size>
<object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object>
<object><name> cat </name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object>
</annotation>"""


def test_voc_reader(tmp_path):
    paths = []
    for f in ("a.jpg", "b.jpg"):
        paths.append(tmp_path / (f + ".xml"))
        paths[-1].write_text(VOC.format(f=f))
    records, names = annotations.read_voc(paths)
    assert names == ["cat", "dog"]
    assert records[1]["file"] == "b.jpg" and (records[1]["width"], records[1]["height"]) == (50, 40)
    np.testing.assert_array_equal(records[0]["boxes"], [[1, 2, 30, 20], [5, 6, 7, 8]])
    np.testing.assert_array_equal(records[0]["labels"], [1, 0])
    with pytest.raises(ValueError, match="not in"):
        annotations.read_voc(paths, classes=["dog"])


def test_voc_reader_refuses_dtds(tmp_path):
    path = tmp_path / "evil.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>')
    with pytest.raises(ValueError, match="DTD"):
        annotations.read_voc([path])


# ---------------------------------------------------------------- drawing
def test_draw_boxes_and_mask_overlay(tmp_path):
    img = np.zeros((16, 16, 3), np.uint8)
    boxed = draw.draw_boxes(img, [[2, 2, 10, 10]], [1], ["a", "b"], scores=[0.9], scale=4)
    assert boxed.size == (64, 64)
    assert tuple(np.asarray(boxed)[40, 8]) == tuple(draw.PALETTE[1])         # left edge of the box
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 3
    over = np.asarray(draw.overlay_mask(img, mask, alpha=1.0, scale=1))
    assert tuple(over[5, 5]) == tuple(draw.PALETTE[2]) and tuple(over[0, 0]) == (0, 0, 0)
    path = draw.side_by_side([boxed, boxed], str(tmp_path / "x.png"))
    from PIL import Image
    assert Image.open(path).size == (136, 64)
