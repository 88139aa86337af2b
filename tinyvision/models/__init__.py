"""Model zoo: ResNets (CIFAR and ImageNet layouts), Vision Transformers and the CIFAR speed-run
net (``cifar_speedrun``, airbench-like), built by name.

    model = tv.models.create("resnet20", num_classes=10)     # or tv.models.resnet20()
    tv.models.list_models("vit_*")
    model.default_cfg                                        # input size, mean/std, recipe
    tv.models.load_pretrained(model, "weights.safetensors")
    tv.summary(model, (1, 3, 32, 32))
"""
from .registry import create, get_default_cfg, is_model, list_models, register_model
from .resnet import (BasicBlock, Bottleneck, PadShortcut, ResNet, plain20, plain32, plain44, plain56,
                     plain110, resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56,
                     resnet110)
from .vit import (Block, DropPath, Mlp, PatchEmbed, VisionTransformer, resample_pos_embed,
                  vit_base_patch16_224, vit_cifar_small, vit_cifar_tiny, vit_lite_7_4,
                  vit_small_patch16_224, vit_tiny_patch16_224)
from .speedrun import SpeedrunBlock, SpeedrunNet, cifar_speedrun, identity_init_, init_whitening
from .pretrained import load_pretrained, save_pretrained, torchvision_vit_to_timm
from .freeze import freeze, unfreeze
from .summary import ModelSummary, summary
