from .registry import create, get_default_cfg, list_models, register_model
from .resnet import BasicBlock, Bottleneck, ResNet
from .vit import VisionTransformer
