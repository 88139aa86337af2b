"""Predictions: the model of a training checkpoint, and its logits over a data loader, with
test-time augmentation (TTA).

TTA averages a model's logits over several views of each test image: the image, its mirror,
and the image moved a few pixels each way, the changes the training augmentation taught the
model to ignore. For V views,

    logits(x) = (1/V) sum_v model(view_v(x))

which removes part of the prediction's dependence on where the object happens to sit.
"""
import numpy as np

from . import backend, data, models
from .errors import CheckpointError
from .recipes import TrainConfig
from .serialization import classifier_checkpoint, load
from .tensor import Tensor, no_grad


def tta_offsets(shift):
    """The translations (dy, dx) that test-time augmentation averages over: the image itself
    and, for ``shift`` > 0, the image moved ``shift`` pixels down, up, right and left: the
    moves the training crop (``RandomCrop(32, padding=4)``) taught the model to ignore."""
    if not isinstance(shift, int) or isinstance(shift, bool) or shift < 0:
        raise ValueError(f"tta_shift: expected a whole number of pixels >= 0, got {shift!r}")
    return [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])


def tta_name(tta):
    """[True, 2] -> 'flip + shift 2 TTA'."""
    flip, shift = tta
    return " + ".join((["flip"] if flip else []) + ([f"shift {shift}"] if shift else []) or ["no"]) + " TTA"


def tta_border(augment):
    """How a moved test view fills its uncovered border: as the training augmentation
    ``augment`` padded its crops, so the views look like the images the model was taught to
    ignore moves of: 'reflect' after 'translate2_flip', else 'black' (zero padding)."""
    return "reflect" if augment == "translate2_flip" else "black"


def translate(a, dy, dx, fill):
    """a (N, C, H, W) moved dy pixels down and dx right: out[..., i, j] = a[..., i - dy, j - dx]
    where in range. The uncovered border takes ``fill`` (per channel, shape (C, 1, 1)), or with
    fill = 'reflect' the image's mirror across its edge (row -1 reads row 1)."""
    xp = backend.array_module(a)
    N, C, H, W = a.shape
    if abs(dy) >= H or abs(dx) >= W:
        raise ValueError(f"cannot move a {H}x{W} image by ({dy}, {dx}) pixels")
    if isinstance(fill, str):
        if fill != "reflect":
            raise ValueError(f"fill: expected per-channel values or 'reflect', got {fill!r}")
        padded = xp.pad(a, ((0, 0), (0, 0), (abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="reflect")
        return xp.ascontiguousarray(padded[:, :, abs(dy) - dy:abs(dy) - dy + H, abs(dx) - dx:abs(dx) - dx + W])
    out = xp.empty_like(a)
    out[...] = fill
    out[:, :, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        a[:, :, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


@no_grad()
def predict_logits(model, loader, tta_flip=False, tta_shift=0, border="black"):
    """Logits (N, K) and targets (N,) over a loader, in evaluation mode, as host arrays.

    Test-time augmentation averages the logits of several views of each image: with
    ``tta_flip`` the image and its mirror, with ``tta_shift`` = s also the image moved s pixels
    each way (``tta_offsets``; 5 positions, 10 views with the flip). A moved image's uncovered
    border is ``border``: 'black' (as the training crop's zero padding; normalised as the
    loader normalises, with the model's ``default_cfg`` statistics) or 'reflect' (as a
    reflect-padded crop's; ``tta_border`` picks the one the training used)."""
    offsets = tta_offsets(tta_shift)
    if border not in ("black", "reflect"):
        raise ValueError(f"border: expected 'black' or 'reflect', got {border!r}")
    normalize = data.Normalize(model.default_cfg["mean"], model.default_cfg["std"]) if tta_shift else None
    was_training = model.training
    model.eval()
    outs, targets = [], []
    for x, y in loader:
        fill = "reflect"
        if tta_shift and border == "black":  # a (C, 1, 1) black pixel, on x's device and in its dtype
            fill = normalize(backend.array_module(x.data).zeros((x.data.shape[1], 1, 1), x.data.dtype))
        total = None
        for dy, dx in offsets:
            view = x if (dy, dx) == (0, 0) else Tensor(translate(x.data, dy, dx, fill))
            for image in ((view, view[:, :, :, ::-1]) if tta_flip else (view,)):
                logits = model(image).data
                total = logits if total is None else total + logits
        outs.append(backend.to_numpy(total * (1.0 / (len(offsets) * (2 if tta_flip else 1)))))
        targets.append(backend.to_numpy(y.data))
    model.train(was_training)
    return np.concatenate(outs), np.concatenate(targets)


def load_checkpoint_model(path, device="cpu"):
    """The model of a training checkpoint, in eval mode, with its config and class names.
    CheckpointError, one line naming the file, for anything else: a detection/segmentation or
    pretraining checkpoint (``serialization.classifier_checkpoint``), or weights that do not
    fit the model its config names."""
    state = classifier_checkpoint(load(path), path)
    try:
        cfg = TrainConfig(**state["config"])
    except TypeError as exc:
        raise CheckpointError(f"{path}: its config does not fit this tinyvision's TrainConfig ({exc})") from None
    model = models.create(cfg.model, num_classes=len(state["classes"]), **cfg.model_kwargs)
    models.pretrained.load_state(model, state["model"], path)
    return model.to(backend.check_device(device)).eval(), cfg, list(state["classes"])
