"""Residual networks (He et al., "Deep Residual Learning for Image Recognition", 2015).

A residual block learns a correction F(x) to its input instead of a whole new mapping:

    y = relu(F(x) + shortcut(x)),    shortcut(x) = x when the shapes agree.

If the identity is (close to) optimal, the layers only have to push F towards zero, which is
easier than fitting an identity with a stack of nonlinear layers; and the gradient reaches
early layers through the shortcut unchanged (dy/dx = dF/dx + 1). With ``plain=True`` the
shortcut is removed (y = relu(F(x))), the "plain" networks of the paper's degradation
experiment: deeper plain nets train *worse*, deeper residual nets better.

When a block halves the resolution and widens the channels, the shortcut must change shape:

- option 'A' (parameter-free, the paper's CIFAR nets): subsample x[:, :, ::2, ::2] and pad
  the new channels with zeros;
- option 'B' (torchvision): a 1x1 convolution with stride 2 followed by batch norm,
  ``downsample.0`` / ``downsample.1``.

Two families share one ``ResNet`` class:

- CIFAR ResNets of depth 6n + 2 (``resnet20`` ... ``resnet110``): a 3x3 stem with 16
  channels, three stages of n BasicBlocks with 16, 32, 64 channels on 32x32, 16x16, 8x8 maps,
  global average pooling and a linear classifier; shortcut option A by default.
- ImageNet ResNets (``resnet18``, ``resnet34``, ``resnet50``): a 7x7 stride-2 stem and a 3x3
  stride-2 max pool, four stages of 64 ... 512 (x4 for Bottleneck) channels; torchvision's
  structure and parameter names, so their checkpoints load as they are. ``small_input=True``
  swaps the stem for a 3x3 stride-1 conv without max pool, for 32x32 images.
"""
from .. import nn, ops
from .registry import cifar_cfg, imagenet_cfg, register_model

SHORTCUTS = ("A", "B")


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding 1 (keeps the size at stride 1); no bias, since the batch
    norm that follows subtracts the mean anyway."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Shortcut option A: parameter-free change of shape.

        y = zero-pad_channels(x[:, :, ::s, ::s])

    The new channels are split evenly before and after the old ones (an odd one goes after).

    Shapes: x (N, C_in, H, W) -> y (N, C_out, ceil(H / s), ceil(W / s)).
    """

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"shortcut option A can only add channels (zero padding), not go from "
                             f"{in_planes} to {out_planes}; use shortcut='B'")
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_planes - self.in_planes
        if extra:
            x = ops.pad(x, ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0)))
        return x

    def extra_repr(self):
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


def make_shortcut(in_planes, out_planes, stride, shortcut, plain):
    """The module for the shortcut branch: None (plain net), Identity when the shape is kept,
    else option A (``PadShortcut``) or B (1x1 conv + batch norm, torchvision's ``downsample``)."""
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
    if plain:
        return None
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    if shortcut == "A":
        return PadShortcut(in_planes, out_planes, stride)
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34 and the CIFAR ResNets):

        F(x) = bn2(conv2(relu(bn1(conv1(x)))))
        y    = relu(F(x) + shortcut(x))          (y = relu(F(x)) with plain=True)

    conv1 carries the stride.

    Shapes: x (N, inplanes, H, W) -> y (N, planes, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, shortcut="B", plain=False):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = make_shortcut(inplanes, planes, stride, shortcut, plain)

    def residual(self, x):
        """F(x), the branch that learns the correction."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        out = self.residual(x)
        if self.downsample is not None:
            out = out + self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a shortcut (ResNet-50 and deeper); the 1x1
    convolutions keep the expensive 3x3 one at a quarter of the output width:

        F(x) = bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))
        y    = relu(F(x) + shortcut(x))

    The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5", slightly more
    accurate than striding the first 1x1, which would skip 3/4 of the input).

    Shapes: x (N, inplanes, H, W) -> y (N, 4 planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, shortcut="B", plain=False):
        super().__init__()
        width = planes * self.expansion
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, width)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.downsample = make_shortcut(inplanes, width, stride, shortcut, plain)

    def residual(self, x):
        """F(x), the branch that learns the correction."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        out = self.residual(x)
        if self.downsample is not None:
            out = out + self.downsample(x)
        return self.relu(out)


class ResNet(nn.Module):
    """A stem, stages of residual blocks, global average pooling and a linear classifier.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18, (3, 3, 3) for ResNet-20.
        widths: ``planes`` of each stage; every stage after the first halves the resolution.
        num_classes: outputs of ``fc`` (0: no classifier, the model returns pooled features).
        stem: 'imagenet' (7x7 stride-2 conv + 3x3 stride-2 max pool, for 224x224) or 'cifar'
            (3x3 stride-1 conv, no pooling, for 32x32).
        shortcut: 'A' (zero padding) or 'B' (1x1 conv projection) where shapes change.
        plain: drop every shortcut (the paper's plain baselines).
        zero_init_residual: start each block's last batch norm at gamma = 0, so that every
            block starts as the identity (Goyal et al. 2017: helps large-batch training).
        in_chans: channels of the input image.

    Shapes: x (N, in_chans, H, W) -> logits (N, num_classes).
    Parameter names follow torchvision: conv1, bn1, layer1..layerK, avgpool, fc,
    ``layer2.0.downsample.0.weight``.
    """

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes=1000, stem="imagenet",
                 shortcut="B", plain=False, zero_init_residual=False, in_chans=3):
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"layers {tuple(layers)} and widths {tuple(widths)} need one entry per stage")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.num_classes, self.stem, self.shortcut, self.plain = num_classes, stem, shortcut, plain
        self.inplanes = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, self.inplanes, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = conv3x3(in_chans, self.inplanes)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        for i, (n, planes) in enumerate(zip(layers, widths)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, planes, n, 1 if i == 0 else 2))
        self.num_stages = len(layers)
        self.num_features = widths[-1] * block.expansion
        # what a dense-prediction head needs to know of each stage's output (tasks.backbones)
        self.stage_channels = tuple(w * block.expansion for w in widths)
        self.stage_strides = tuple((4 if stem == "imagenet" else 1) * 2 ** i for i in range(len(layers)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self._init_weights(zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride):
        """A stage: the first block changes stride and width, the others keep them."""
        stage = [block(self.inplanes, planes, stride, self.shortcut, self.plain)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, 1, self.shortcut, self.plain) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual):
        # He initialisation with fan_out (torchvision): keeps the variance of the backward
        # signal constant through ReLU networks; batch norm starts as the identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def stages(self, x):
        """Yield each stage's feature map in turn, (N, stage_channels[i], H/s_i, W/s_i) with
        s_i = stage_strides[i]; a generator, so a caller that wants only the last keeps no other."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            yield x

    def forward_features(self, x):
        """The last stage's feature map: (N, in_chans, H, W) -> (N, num_features, H/s, W/s)
        (s = 32 for the ImageNet stem with 4 stages, 4 for the CIFAR nets)."""
        for x in self.stages(x):
            pass
        return x

    def forward_head(self, x, pre_logits=False):
        """Global average pooling and the classifier: (N, F, h, w) -> (N, num_classes), or the
        pooled (N, F) features with pre_logits=True."""
        x = ops.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.fc

    def reset_classifier(self, num_classes):
        """Replace ``fc`` by a freshly initialised Linear with ``num_classes`` outputs
        (0: Identity, the model then returns pooled features)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if hasattr(self, "default_cfg"):
            self.default_cfg["num_classes"] = num_classes


# ---------------------------------------------------------------- CIFAR ResNets (6n + 2)
CIFAR_WIDTHS = (16, 32, 64)


def _cifar_resnet(depth, num_classes, plain, shortcut="A", **kwargs):
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n + 2, got {depth}")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, (n, n, n), CIFAR_WIDTHS, num_classes, stem="cifar", shortcut=shortcut,
                  plain=plain, **kwargs)


_RESNET_CIFAR_CFG = cifar_cfg("resnet_sgd")


@register_model(_RESNET_CIFAR_CFG)
def resnet20(num_classes=10, **kwargs):
    """ResNet-20 for CIFAR (3 x 3 BasicBlocks, 16/32/64 channels), 0.27M parameters."""
    return _cifar_resnet(20, num_classes, False, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def resnet32(num_classes=10, **kwargs):
    """ResNet-32 for CIFAR, 0.46M parameters."""
    return _cifar_resnet(32, num_classes, False, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def resnet44(num_classes=10, **kwargs):
    """ResNet-44 for CIFAR, 0.66M parameters."""
    return _cifar_resnet(44, num_classes, False, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def resnet56(num_classes=10, **kwargs):
    """ResNet-56 for CIFAR, 0.85M parameters."""
    return _cifar_resnet(56, num_classes, False, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def resnet110(num_classes=10, **kwargs):
    """ResNet-110 for CIFAR, 1.7M parameters."""
    return _cifar_resnet(110, num_classes, False, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def plain20(num_classes=10, **kwargs):
    """ResNet-20 without shortcuts (the paper's plain baseline)."""
    return _cifar_resnet(20, num_classes, True, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def plain32(num_classes=10, **kwargs):
    """ResNet-32 without shortcuts."""
    return _cifar_resnet(32, num_classes, True, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def plain44(num_classes=10, **kwargs):
    """ResNet-44 without shortcuts."""
    return _cifar_resnet(44, num_classes, True, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def plain56(num_classes=10, **kwargs):
    """ResNet-56 without shortcuts."""
    return _cifar_resnet(56, num_classes, True, **kwargs)


@register_model(_RESNET_CIFAR_CFG)
def plain110(num_classes=10, **kwargs):
    """ResNet-110 without shortcuts."""
    return _cifar_resnet(110, num_classes, True, **kwargs)


# ---------------------------------------------------------------- ImageNet ResNets
def _imagenet_cfg(small_input=False, stem=None, **_):
    """CIFAR's input size and statistics when the model is built for 32x32 images."""
    if small_input or stem == "cifar":
        return cifar_cfg("resnet_sgd")
    return imagenet_cfg("resnet_sgd")


def _imagenet_resnet(block, layers, num_classes, small_input, stem=None, **kwargs):
    if stem is None:
        stem = "cifar" if small_input else "imagenet"
    elif small_input and stem != "cifar":
        raise ValueError(f"small_input=True means stem='cifar', but stem={stem!r} was given")
    return ResNet(block, layers, num_classes=num_classes, stem=stem, **kwargs)


@register_model(_imagenet_cfg)
def resnet18(num_classes=1000, small_input=False, **kwargs):
    """ResNet-18 (torchvision layout), 11,689,512 parameters with 1000 classes.
    small_input=True: 3x3 stride-1 stem without max pool, for 32x32 images."""
    return _imagenet_resnet(BasicBlock, (2, 2, 2, 2), num_classes, small_input, **kwargs)


@register_model(_imagenet_cfg)
def resnet34(num_classes=1000, small_input=False, **kwargs):
    """ResNet-34 (torchvision layout), 21,797,672 parameters with 1000 classes."""
    return _imagenet_resnet(BasicBlock, (3, 4, 6, 3), num_classes, small_input, **kwargs)


@register_model(_imagenet_cfg)
def resnet50(num_classes=1000, small_input=False, **kwargs):
    """ResNet-50 (torchvision layout, Bottleneck blocks), 25,557,032 parameters with 1000 classes."""
    return _imagenet_resnet(Bottleneck, (3, 4, 6, 3), num_classes, small_input, **kwargs)
