"""Predictions drawn on images with Pillow: boxes with class names and scores, and
segmentation masks as translucent colour overlays."""
import numpy as np
from PIL import Image, ImageDraw

from ..fileio import atomic_open

# one colour per class (matplotlib's tab10, then repeated)
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)], np.uint8)


def _colour(k):
    return tuple(int(c) for c in PALETTE[int(k) % len(PALETTE)])


def draw_boxes(image, boxes, labels, classes, scores=None, scale=4):
    """A PIL image: ``image`` uint8 (H, W, 3) enlarged ``scale`` times (nearest), with each
    box (n, 4) xyxy in the original pixels outlined in its class colour and captioned
    'name score' (or 'name' without scores)."""
    img = Image.fromarray(np.asarray(image, np.uint8)).resize((image.shape[1] * scale, image.shape[0] * scale),
                                                              Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for i, (box, k) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), labels)):
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=_colour(k), width=2)
        caption = classes[int(k)] + ("" if scores is None else f" {float(scores[i]):.2f}")
        tx, ty = x1 + 2, max(y1 - 11, 0)
        draw.rectangle(draw.textbbox((tx, ty), caption), fill=_colour(k))
        draw.text((tx, ty), caption, fill=(255, 255, 255))
    return img


def overlay_mask(image, mask, alpha=0.5, scale=4):
    """A PIL image: ``image`` uint8 (H, W, 3) blended with the colours of label map ``mask``
    (H, W) (0 = background, left as it is; 1 + k in class k's colour), enlarged ``scale`` times."""
    image, mask = np.asarray(image, np.float32), np.asarray(mask)
    colours = PALETTE[(mask - 1) % len(PALETTE)].astype(np.float32)
    fg = (mask > 0)[..., None]
    out = np.where(fg, (1 - alpha) * image + alpha * colours, image).round().astype(np.uint8)
    return Image.fromarray(out).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)


def side_by_side(images, path):
    """Paste PIL images left to right (8 px apart) and save the PNG to ``path``."""
    w = sum(im.width for im in images) + 8 * (len(images) - 1)
    canvas = Image.new("RGB", (w, max(im.height for im in images)), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + 8
    with atomic_open(path) as f:
        canvas.save(f, format="PNG")
    return path
