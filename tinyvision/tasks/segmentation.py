"""Semantic segmentation: a U-Net-style decoder on ResNet features and a SETR-style decoder
on ViT patch tokens, trained with pixel-wise cross-entropy.

Every pixel is classified into K + 1 classes (0 = background, 1 + k = object class k):

    loss = -1/(B H W) sum_{b, y, x} log softmax(z[b, :, y, x])[t[b, y, x]]

Metrics (``tinyvision.metrics``): pixel accuracy, per-class IoU = TP / (TP + FP + FN) and
their mean over the classes present, mIoU.
"""
import numpy as np

from .. import metrics, nn, ops
from ..tensor import Tensor, no_grad
from .backbones import build_backbone, conv_bn_relu


class UNetDecoder(nn.Module):
    """Decoder over ResNet features c1 (stride s), c2 (stride 2s), c3 (stride 4s), s = 2 for
    ResNetBackbone, 1 for ResNet-20:

        d2 = conv_bn_relu([conv_transpose_2x2/2(c3), c2])          stride 2s  (transposed conv)
        d1 = conv_bn_relu([upsample_bilinear_x2(d2), c1])           stride s   (bilinear)
        logits = upsample_bilinear_xs(conv1x1(d1))                  stride 1

    Shapes: features with channels (w1, w2, w3) -> logits (B, num_classes, S, S).
    """

    def __init__(self, channels, num_classes, width=64, strides=(2, 4, 8)):
        super().__init__()
        if len(channels) != 3 or len(strides) != 3:
            raise ValueError(f"the U-Net decoder takes three feature maps, got channels {tuple(channels)}")
        w1, w2, w3 = channels
        s = strides[0]
        if tuple(strides) != (s, 2 * s, 4 * s):
            raise ValueError(f"the U-Net decoder needs strides (s, 2s, 4s), got {tuple(strides)}")
        self.up3 = nn.ConvTranspose2d(w3, width, 2, stride=2)
        self.dec2 = conv_bn_relu(width + w2, width)
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear")
        self.dec1 = conv_bn_relu(width + w1, width // 2)
        self.classifier = nn.Conv2d(width // 2, num_classes, 1)
        self.up1 = nn.Upsample(scale_factor=s, mode="bilinear") if s > 1 else nn.Identity()

    def forward(self, feats):
        c1, c2, c3 = feats
        d2 = self.dec2(ops.cat([self.up3(c3), c2], axis=1))
        d1 = self.dec1(ops.cat([self.up2(d2), c1], axis=1))
        return self.up1(self.classifier(d1))


class SETRDecoder(nn.Module):
    """SETR's progressive upsampling (Zheng et al. 2021) on the ViT token grid (stride P):
    conv_bn_relu then bilinear x2, repeated until stride 1, with a 1x1 classifier before the
    last upsampling.

    Shapes: [(B, D, S/P, S/P)] -> logits (B, num_classes, S, S).
    """

    def __init__(self, channels, num_classes, patch_size, width=64):
        super().__init__()
        steps = int(np.log2(patch_size))
        if 2 ** steps != patch_size:
            raise ValueError(f"SETR decoder needs a power-of-two patch size, got {patch_size}")
        layers, cin = [], channels[0]
        for _ in range(steps - 1):
            layers += [conv_bn_relu(cin, width), nn.Upsample(scale_factor=2, mode="bilinear")]
            cin = width
        layers += [conv_bn_relu(cin, width), nn.Conv2d(width, num_classes, 1),
                   nn.Upsample(scale_factor=2, mode="bilinear")]
        self.layers = nn.Sequential(*layers)

    def forward(self, feats):
        return self.layers(feats[-1])


class Segmenter(nn.Module):
    """Backbone + decoder (U-Net for the ResNets, SETR for 'vit') predicting ``num_classes``
    channels (background included).

    Shapes: x (B, 3, S, S) -> logits (B, num_classes, S, S).
    """

    def __init__(self, num_classes, backbone="resnet", img_size=64, width=64, **backbone_kwargs):
        super().__init__()
        self.num_classes, self.img_size, self.backbone_name = num_classes, img_size, backbone
        self.backbone = build_backbone(backbone, img_size, **backbone_kwargs)
        if len(self.backbone.channels) > 1:    # a pyramid of stages: U-Net with skips; a token grid: SETR
            self.decoder = UNetDecoder(self.backbone.channels, num_classes, width, self.backbone.strides)
        else:
            self.decoder = SETRDecoder(self.backbone.channels, num_classes, self.backbone.strides[0], width)

    def forward(self, x):
        return self.decoder(self.backbone(x))

    def loss(self, x, targets):
        """Mean pixel-wise cross-entropy of images x (B, 3, S, S) against the targets' masks;
        returns (loss Tensor, {'ce': the loss as a 0-d array on the model's device})."""
        mask = np.stack([t["mask"] for t in targets]).astype(np.int64)
        loss = ops.cross_entropy(self(x), Tensor(mask, device=x.device))
        return loss, dict(ce=loss.data)

    def predict(self, x, tta_flip=False):
        """Label maps int64 (B, S, S) for images x (B, 3, S, S). ``tta_flip``: test-time
        augmentation, the logits of each image averaged with those of its mirror image
        (mirrored back), as ``train --tta-flip`` does for classification; the prediction is
        then exactly mirror-symmetric, as the scenes' statistics are."""
        with no_grad():
            logits = self(x)
            if tta_flip:
                logits = (logits + self(x[:, :, :, ::-1])[:, :, :, ::-1]) * 0.5
            return logits.numpy().argmax(1)


def evaluate(preds, masks, num_classes):
    """Pixel accuracy, mIoU and per-class IoU (list, NaN for classes absent from both) of
    predicted label maps against true ones (same shapes)."""
    per_class = metrics.per_class_iou(preds, masks, num_classes)
    return dict(pixel_accuracy=metrics.pixel_accuracy(preds, masks), miou=float(np.nanmean(per_class)),
                iou_per_class=[float(v) for v in per_class])


def build_model(num_classes, backbone="resnet", img_size=64, **kwargs):
    """A ``Segmenter`` with ``num_classes`` outputs (background included)."""
    return Segmenter(num_classes, backbone, img_size, **kwargs)
