"""A small, fast VGG-like network for CIFAR-10 speed runs: whitening, three conv blocks, a max.

The design is the one of airbench (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single
GPU", 2024), itself refined from tysam-code's hlb-cifar10 (2023) and David Page's ResNet-9
(2018). Written here from those ideas, under our own name: ``cifar_speedrun`` says what it is
for (training CIFAR-10 in as few FLOPs as possible), and the code is not airbench's, so
it should not carry that name (the whitening here is centred, for one; see ``init_whitening``).

    x (N, 3, 32, 32), normalised with the CIFAR-10 mean/std
    whiten   2x2 conv, 3 -> 24, no padding, weights from the data (frozen)  (N, 24, 31, 31)
    GELU
    blocks.0 conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU          (N, 64, 15, 15)
    blocks.1 the same                                                       (N, 256, 7, 7)
    blocks.2 the same                                                       (N, 256, 3, 3)
    global max over (H, W)                                                  (N, 256)
    head     linear, no bias, times logit_scale = 1/9                        (N, 10)

1,972,792 parameters at the default widths (64, 256, 256), of which 1,440 are frozen (the
whitening filters and the batch norms' unit scales). Why each part:

- Whitening (``init_whitening``): the first layer maps every 2x2x3 patch onto the eigenvectors
  of the patch covariance, scaled to unit variance, so the blocks see decorrelated inputs of
  equal scale in every direction: gradient descent no longer spends its first epochs learning
  the low-variance (high-frequency) directions slowly. The filters are computed, not learned
  (requires_grad False); the bias trains for the first few epochs and is then frozen
  (``optim.FreezeAfter``). Each filter also appears negated, so that after the GELU both signs
  of every whitened component survive.
- Identity initialisation (``identity_init_``): each 3x3 conv starts by passing its first
  min(C_in, C_out) input channels through unchanged (random weights on the other outputs), so
  at the start signal and gradient cross every layer undistorted, as through a residual
  shortcut, without the shortcut's cost.
- Pooling before batch norm: the norm and the GELU then run on a quarter of the pixels.
- Batch norm with a bias but no trained scale (``weight`` frozen at 1): the conv before it is
  then scale-invariant, so its weight decay sets the effective step size; the bias is what
  the norm must learn, and trains with a 64x learning rate (``optim.param_groups_norm_bias``).
  Momentum 0.4 (PyTorch's convention: the new batch's weight; airbench writes 0.6 for the old
  estimate's): the running estimates follow the last few batches, as the weights move fast.
- A global max instead of an average: the strongest response of each feature anywhere.
- ``logit_scale`` = 1/9: the head sees 256 pooled features of order 1, so without a scale the
  initial logits spread over several units; times 1/9 the softmax starts near uniform. And as
  d(logits)/dW = s features, one SGD step moves the logits s^2 = 1/81 as far: the head learns
  slower than the blocks at the large learning rate they need (a softmax temperature).

Test-time augmentation: airbench averages six views (the image and its mirror with weight
1/2; the image moved one pixel diagonally both ways, with reflected borders, and their mirrors,
1/4). ``tinyvision.train.predict_logits(tta_flip=True, tta_shift=1)`` averages ten views of
the same kind (the image and its four one-pixel moves with black borders, each with its
mirror, weighted equally): views the training's flips and translations taught the net to
ignore; it costs 10/6 of airbench's evaluation time.
"""
import numpy as np

from .. import backend, nn, ops
from ..tensor import Tensor, no_grad
from .registry import cifar_cfg, register_model

WIDTHS = (64, 256, 256)


def identity_init_(weight):
    """Make a conv weight (C_out, C_in, KH, KW) with odd KH, KW start as the identity on its
    first m = min(C_out, C_in) channels: W[o] = 0 except W[o, o, KH // 2, KW // 2] = 1 for o < m,
    so output channel o equals input channel o (stride 1, 'same' padding). The other output
    channels keep their weights (their random initialisation). Returns ``weight``."""
    C_out, C_in, KH, KW = weight.shape
    if KH % 2 == 0 or KW % 2 == 0:
        raise ValueError(f"identity_init_ needs a kernel with a centre (odd sizes), got {KH}x{KW}")
    m = min(C_out, C_in)
    xp = backend.array_module(weight.data)
    weight.data[:m] = 0
    weight.data[xp.arange(m), xp.arange(m), KH // 2, KW // 2] = 1
    return weight


def conv3x3(in_chs, out_chs, identity_init=True):
    """3x3 convolution, padding 1, no bias (batch norm follows), identity-initialised."""
    conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)
    if identity_init:
        identity_init_(conv.weight)
    return conv


def bias_only_batch_norm(num_features, momentum, eps):
    """BatchNorm2d with a trained bias and its scale frozen at 1 (requires_grad False)."""
    norm = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
    norm.weight.requires_grad_(False)
    return norm


class SpeedrunBlock(nn.Module):
    """conv3x3 - max-pool 2 - batch norm - GELU - conv3x3 - batch norm - GELU.

    Shapes: x (N, C_in, H, W) -> (N, C_out, floor(H / 2), floor(W / 2)).
    """

    def __init__(self, in_chs, out_chs, bn_momentum=0.4, bn_eps=1e-12, identity_init=True):
        super().__init__()
        self.conv1 = conv3x3(in_chs, out_chs, identity_init)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = bias_only_batch_norm(out_chs, bn_momentum, bn_eps)
        self.act = nn.GELU()
        self.conv2 = conv3x3(out_chs, out_chs, identity_init)
        self.norm2 = bias_only_batch_norm(out_chs, bn_momentum, bn_eps)

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class SpeedrunNet(nn.Module):
    """The whitening conv, three ``SpeedrunBlock``s, a global max and a scaled linear head
    (see the module docstring for the why of each part).

    Args:
        widths: output channels of the three blocks.
        num_classes: outputs of ``head`` (0: none, the model returns the pooled features).
        logit_scale: the constant the head's output is multiplied by.
        bn_momentum, bn_eps: of every batch norm (momentum as PyTorch: the new batch's weight).
        identity_init: identity-initialise the 3x3 convs (``identity_init_``).
        in_chans: channels of the input image.

    Shapes: x (N, in_chans, H, W), H, W >= 12 (32 for CIFAR) -> logits (N, num_classes).
    Parameter names: ``whiten.weight``, ``whiten.bias``, ``blocks.0.conv1.weight``,
    ``blocks.0.norm1.bias``, ..., ``head.weight``.
    """

    def __init__(self, widths=WIDTHS, num_classes=10, logit_scale=1 / 9, bn_momentum=0.4, bn_eps=1e-12,
                 identity_init=True, in_chans=3):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths: expected three positive channel counts, got {widths}")
        self.num_classes, self.logit_scale, self.widths = num_classes, float(logit_scale), widths
        whiten_width = 2 * in_chans * 2 * 2     # every 2x2 patch direction, and its negative
        self.whiten = nn.Conv2d(in_chans, whiten_width, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)   # set from the data by init_whitening
        self.act = nn.GELU()
        chs = (whiten_width,) + widths
        self.blocks = nn.Sequential(*[SpeedrunBlock(chs[i], chs[i + 1], bn_momentum, bn_eps, identity_init)
                                      for i in range(3)])
        self.num_features = widths[-1]
        self.head = nn.Linear(self.num_features, num_classes, bias=False) if num_classes else nn.Identity()

    def forward_features(self, x):
        """(N, in_chans, H, W) -> the last block's map (N, num_features, H', W'), H' = 3 at 32."""
        return self.blocks(self.act(self.whiten(x)))

    def forward_head(self, x, pre_logits=False):
        """Global max and the scaled head: (N, F, h, w) -> (N, num_classes), or the pooled
        (N, F) features with pre_logits=True."""
        x = ops.max(x, axis=(2, 3))
        if pre_logits or not self.num_classes:
            return x
        return self.head(x) * self.logit_scale

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes):
        """Replace ``head`` by a fresh bias-free Linear with ``num_classes`` outputs (0: none)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes, bias=False) if num_classes else nn.Identity()
        if hasattr(self, "default_cfg"):
            self.default_cfg["num_classes"] = num_classes


@no_grad()
def init_whitening(model, images, eps=5e-4):
    """Set the whitening conv of ``model`` (a ``SpeedrunNet``, or its ``whiten`` Conv2d) from
    training images, so that its first half of outputs has zero mean and (nearly) identity
    covariance over all patches of ``images``, and the second half is its negative.

    With p the K = C kh kw values of a patch (flattened (c, u, v) as the weight), mu their mean
    and Sigma = E[(p - mu)(p - mu)^T] = V diag(lambda) V^T (eigenvalues descending),

        W = [V^T / sqrt(lambda + eps); -V^T / sqrt(lambda + eps)]     (2K rows, one per filter)
        b = -W mu,

    so that W_+ (p - mu) has covariance diag(lambda / (lambda + eps)) ~ I. ``eps`` keeps the
    directions of (almost) no variance, which would be noise amplified, at a small gain.

    Args:
        images: (N, C, H, W) floats, as the model sees them (normalised with its mean/std;
            airbench uses 5000 un-augmented training images). Array or Tensor, any device.
        eps: added to every eigenvalue.
    Returns the eigenvalues (K,), descending, as a host float64 array.
    """
    conv = model.whiten if hasattr(model, "whiten") else model
    C, kh, kw = conv.weight.shape[1:]
    K = C * kh * kw
    if conv.weight.shape[0] != 2 * K or conv.bias is None:
        raise ValueError(f"init_whitening: expected a conv with 2 x {K} filters and a bias, got weight "
                         f"{tuple(conv.weight.shape)}")
    x = backend.to_numpy(images.data if isinstance(images, Tensor) else images)
    if x.ndim != 4 or x.shape[1] != C or x.shape[2] < kh or x.shape[3] < kw or x.dtype.kind != "f":
        raise ValueError(f"init_whitening: expected float images (N, {C}, H, W), H >= {kh}, W >= {kw}, "
                         f"got {x.dtype} {tuple(x.shape)}")
    total, outer, count = np.zeros(K), np.zeros((K, K)), 0
    for start in range(0, len(x), 256):     # chunks: all patches of 5000 images would be 0.5 GB
        p = patches(x[start:start + 256].astype(np.float64), kh, kw)
        total += p.sum(axis=0)
        outer += p.T @ p
        count += len(p)
    if count <= K:
        raise ValueError(f"init_whitening: {count} patches cannot estimate a {K}x{K} covariance; give more images")
    mu = total / count
    eigenvalues, V = np.linalg.eigh(outer / count - np.outer(mu, mu))
    eigenvalues, V = np.clip(eigenvalues[::-1], 0.0, None), V[:, ::-1]
    W = V.T / np.sqrt(eigenvalues + eps)[:, None]
    W = np.concatenate([W, -W])
    xp = backend.array_module(conv.weight.data)
    conv.weight.data[...] = xp.asarray(W.reshape(conv.weight.shape), dtype=conv.weight.dtype)
    conv.bias.data[...] = xp.asarray(-W @ mu, dtype=conv.bias.dtype)
    return eigenvalues


def patches(x, kh, kw):
    """Every kh x kw patch of x (N, C, H, W) as a row: (N (H - kh + 1) (W - kw + 1), C kh kw),
    each row ordered (c, u, v) like a conv weight's (C, kh, kw) flattened."""
    N, C, H, W = x.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    shifted = np.stack([x[:, :, u:u + Ho, v:v + Wo] for u in range(kh) for v in range(kw)], axis=2)
    return shifted.transpose(0, 3, 4, 1, 2).reshape(-1, C * kh * kw)


@register_model(cifar_cfg("speedrun_cpu"))
def cifar_speedrun(num_classes=10, width_mult=1.0, **kwargs):
    """The airbench94-like net (widths 64/256/256 times ``width_mult``), 1.97M parameters;
    ``kwargs`` go to ``SpeedrunNet`` (logit_scale, bn_momentum, identity_init, ...)."""
    if not width_mult > 0:
        raise ValueError(f"width_mult: expected a number > 0, got {width_mult!r}")
    widths = tuple(max(1, round(w * width_mult)) for w in WIDTHS)
    return SpeedrunNet(widths, num_classes=num_classes, **kwargs)
