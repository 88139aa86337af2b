"""Readers for the two common annotation formats, into one record per image:

    {'file': str, 'width': int, 'height': int, 'boxes': float32 (k, 4) xyxy,
     'labels': int64 (k,), 'mask': uint8 (height, width) or None}

- COCO JSON: ``images`` (id, file_name, width, height), ``annotations`` (image_id,
  category_id, bbox [x, y, w, h], optional polygon ``segmentation`` [[x1, y1, x2, y2, ...]]),
  ``categories`` (id, name). Labels are category indices 0..K-1 in the order of the category
  ids; polygons are filled with Pillow's ImageDraw into a label map (0 = background, 1 + label).
- Pascal VOC XML: one file per image with ``filename``, ``size`` and ``object``s (``name``,
  ``bndbox`` xmin/ymin/xmax/ymax). Parsed with xml.etree after refusing any document that
  declares a DTD or entities (no entity expansion, no external references).
"""
import json
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw


def polygons_to_mask(polygons, labels, height, width):
    """Label map uint8 (height, width): each polygon (flat [x1, y1, x2, y2, ...], or a list
    of them for one object) filled with 1 + its label, later objects on top."""
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for poly, k in zip(polygons, labels):
        for part in poly:
            if len(part) < 6 or len(part) % 2:
                raise ValueError(f"a polygon needs x, y pairs of at least 3 points, got {len(part)} numbers")
            draw.polygon([(float(part[i]), float(part[i + 1])) for i in range(0, len(part), 2)], fill=int(k) + 1)
    return np.asarray(img, np.uint8)


def read_coco(path):
    """(records in the order of ``images``, class names) from a COCO-style JSON file; boxes
    are converted from [x, y, w, h] to xyxy. Crowd RLE segmentations are not supported (a
    clear error); annotations without segmentation leave the mask None unless another
    annotation of the image has a polygon (then they are left out of the mask)."""
    with open(path) as f:
        coco = json.load(f)
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(f"{path}: not a COCO annotation file (no '{key}')")
    cat_ids = sorted(c["id"] for c in coco["categories"])
    index = {cid: i for i, cid in enumerate(cat_ids)}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    per_image = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        if a["image_id"] not in per_image:
            raise ValueError(f"{path}: annotation {a.get('id')} refers to unknown image {a['image_id']}")
        if a["category_id"] not in index:
            raise ValueError(f"{path}: annotation {a.get('id')} has unknown category {a['category_id']}")
        per_image[a["image_id"]].append(a)
    records = []
    for im in coco["images"]:
        anns = per_image[im["id"]]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32).reshape(-1, 4)
        labels = np.array([index[a["category_id"]] for a in anns], np.int64)
        segs = [(a["segmentation"], k) for a, k in zip(anns, labels) if a.get("segmentation")]
        if any(not isinstance(s, list) for s, _ in segs):
            raise ValueError(f"{path}: image {im['id']}: only polygon segmentations are supported (not RLE)")
        mask = (polygons_to_mask([s for s, _ in segs], [k for _, k in segs], im["height"], im["width"])
                if segs else None)
        records.append(dict(file=im["file_name"], width=int(im["width"]), height=int(im["height"]),
                            boxes=boxes, labels=labels, mask=mask))
    return records, [names[c] for c in cat_ids]


def _safe_xml(path):
    with open(path, "rb") as f:
        raw = f.read()
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise ValueError(f"{path}: refusing an XML file with a DTD or entity declarations")
    return ET.fromstring(raw)


def read_voc(paths, classes=None):
    """(records, class names) from Pascal VOC XML files. ``classes`` fixes the names and their
    order (an unknown name is an error); by default the sorted names found. Masks are None."""
    parsed = []
    for path in paths:
        root = _safe_xml(path)
        size = root.find("size")
        if size is None or root.find("filename") is None:
            raise ValueError(f"{path}: not a VOC annotation (needs <filename> and <size>)")
        objs = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            coords = [float(bb.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
            objs.append((obj.find("name").text.strip(), coords))
        parsed.append((root.find("filename").text, int(size.find("width").text), int(size.find("height").text), objs))
    names = list(classes) if classes is not None else sorted({n for *_, objs in parsed for n, _ in objs})
    index = {n: i for i, n in enumerate(names)}
    records = []
    for file, w, h, objs in parsed:
        unknown = [n for n, _ in objs if n not in index]
        if unknown:
            raise ValueError(f"{file}: classes {unknown} are not in {names}")
        records.append(dict(file=file, width=w, height=h, boxes=np.array([c for _, c in objs], np.float32).reshape(-1, 4),
                            labels=np.array([index[n] for n, _ in objs], np.int64), mask=None))
    return records, names
