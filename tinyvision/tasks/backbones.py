"""Backbones that return feature maps for dense prediction (detection and segmentation).

- ``ResNetBackbone``: a 3x3 stride-2 stem and three stages of ``BasicBlock``s (from
  ``models.resnet``), each later stage halving the resolution: features at strides 2, 4, 8.
- ``ViTBackbone``: a ``VisionTransformer`` (``models.vit``) without head, built from options or
  a registered CIFAR ViT (``vit_cifar_small``, pretrainable); its patch tokens (class token
  dropped) are put back on their grid: one feature map at stride = patch size.

    tokens (B, 1 + h w, D) -> drop class token -> (B, h w, D) -> (B, D, h, w)

- ``ClassifierResNetBackbone``: a registered classification ResNet (``resnet20`` by default,
  the model ``tinyvision train`` trains on CIFAR-10) without its classifier, one feature map
  per stage. Its weights can come from a classification checkpoint: the transfer of article
  section 6, where a backbone pretrained on labels initialises a detector or a segmenter.

Both expose ``channels`` (per feature map) and ``strides``.
"""
from .. import models, nn, ops
from ..models.resnet import BasicBlock, conv3x3
from ..models.vit import VisionTransformer


class ResNetBackbone(nn.Module):
    """Stem conv3x3/2 + BN + ReLU, then stages of BasicBlocks (shortcut option B).

    Shapes: x (B, 3, H, W) -> [c1 (B, w1, H/2, W/2), c2 (B, w2, H/4, W/4), c3 (B, w3, H/8, W/8)]
    for widths (w1, w2, w3).
    """

    def __init__(self, widths=(32, 64, 128), blocks=(1, 2, 2)):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {widths} and blocks {blocks} need one entry per stage")
        self.stem = nn.Sequential(conv3x3(3, widths[0], stride=2), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, inplanes = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(inplanes, w, stride, shortcut="B")]
            stage += [BasicBlock(w, w, 1, shortcut="B") for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            inplanes = w
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(widths)
        self.strides = tuple(2 ** (i + 1) for i in range(len(widths)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x, feats = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class ViTBackbone(nn.Module):
    """A VisionTransformer's patch tokens as a grid: either a small ViT built from options
    (``patch_size``, ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``) or a registered
    classification ViT (``model='vit_cifar_small'``) at this image size, whose weights can come
    from its CIFAR-10 checkpoint (the position table is resampled to the larger grid).

    Shapes: x (B, 3, S, S) -> [(B, D, S/P, S/P)]  (a list of one map, like ResNetBackbone's).
    """

    def __init__(self, img_size=64, model=None, **vit_kwargs):
        super().__init__()
        if model is not None:
            if vit_kwargs:
                raise ValueError(f"give a registered ViT name or ViT options, not both (got model={model!r} "
                                 f"and {sorted(vit_kwargs)})")
            if model not in models.list_models("vit*"):
                raise ValueError(f"{model!r} is not a registered ViT; the ViT backbone needs one of "
                                 f"{', '.join(models.list_models('vit*'))}")
            self.vit = models.create(model, num_classes=0, img_size=img_size)
        else:
            options = {**dict(patch_size=8, embed_dim=128, depth=4, num_heads=4, mlp_ratio=2.0), **vit_kwargs}
            self.vit = VisionTransformer(img_size=img_size, num_classes=0, gelu="tanh", **options)
        self.grid = self.vit.patch_embed.grid_size
        self.channels, self.strides = (self.vit.embed_dim,), (self.vit.patch_embed.patch_size[0],)

    def load_pretrained(self, path, strict=True):
        """Initialise from a classification checkpoint (.tvz) or .safetensors of the same ViT;
        the classifier is left out; ``strict=False`` loads what fits (``load_weights``).
        Returns the LoadResult."""
        from ..transfer.finetune import load_weights
        return load_weights(self.vit, path, strict)

    def forward(self, x):
        tokens = self.vit.forward_features(x)[:, self.vit.num_prefix_tokens:]       # (B, h w, D)
        B, N, D = tokens.shape
        return [ops.reshape(ops.transpose(tokens, 1, 2), B, D, *self.grid)]


class ClassifierResNetBackbone(nn.Module):
    """The stages of ``models.create(model)`` (a ResNet) as feature maps; parameter names are
    the classifier's under ``net.`` (``net.conv1.weight``, ``net.layer1.0.bn1.running_mean``).

    Shapes: x (B, 3, S, S) -> [(B, c_i, S/s_i, S/s_i) for each stage i]; the CIFAR ResNets
    give c = (16, 32, 64) at strides s = (1, 2, 4), so a 64x64 scene is seen at the pixel
    scale the classifier learned on 32x32 CIFAR images.
    """

    def __init__(self, model="resnet20"):
        super().__init__()
        self.net = models.create(model, num_classes=0)
        if not hasattr(self.net, "stage_channels"):
            raise ValueError(f"{model!r} is not a ResNet; the classifier backbone needs one")
        self.channels, self.strides = self.net.stage_channels, self.net.stage_strides

    def load_pretrained(self, path, strict=True):
        """Initialise from a classification checkpoint (.tvz of ``tinyvision train``) or a
        .safetensors file; the classifier's weights are left out; ``strict=False`` loads what
        fits (``load_weights``). Returns the LoadResult."""
        from ..transfer.finetune import load_weights
        return load_weights(self.net, path, strict)

    def forward(self, x):
        return list(self.net.stages(x))


def conv_bn_relu(cin, cout, k=3):
    """Conv (k x k, same size, no bias) + BatchNorm + ReLU: (B, cin, H, W) -> (B, cout, H, W)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


# The first two are built from options; the others are the classifiers ``tinyvision train``
# trains on CIFAR-10, by model name, so that their checkpoints can start a detector or a segmenter.
BACKBONES = ("resnet", "vit", "resnet20", "vit_cifar_small")


def build_backbone(name, img_size=64, **kwargs):
    """'resnet' -> ResNetBackbone(**kwargs); 'vit' -> ViTBackbone(img_size, **kwargs);
    'resnet20' -> ClassifierResNetBackbone(**kwargs) (CIFAR ResNet-20);
    'vit_cifar_small' -> ViTBackbone(img_size, model='vit_cifar_small') (the CIFAR ViT at this
    image size). Each has ``load_pretrained(path)``."""
    if name == "resnet":
        return ResNetBackbone(**kwargs)
    if name == "resnet20":
        return ClassifierResNetBackbone(**kwargs)
    if name == "vit":
        return ViTBackbone(img_size=img_size, **kwargs)
    if name == "vit_cifar_small":
        return ViTBackbone(img_size=img_size, **{"model": name, **kwargs})
    raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {name!r}")
