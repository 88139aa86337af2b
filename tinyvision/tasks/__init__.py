"""Dense prediction tasks on generated scenes (article sections 6.2 and 6.3).

- ``scenes``: CIFAR-10 objects pasted onto textured 64x64 canvases, with boxes and masks
- ``annotations``: COCO JSON and Pascal VOC XML readers
- ``backbones``: ResNet stages and ViT token grids as feature maps
- ``detection``: CenterNet-style detector, focal loss, decoding, NMS, AP
- ``segmentation``: U-Net and SETR decoders, mIoU
- ``loop``: the training loop, evaluation and checkpoints; ``draw``: PNGs; ``cli``: commands
"""
from . import annotations, detection, draw, loop, scenes, segmentation
from .detection import CenterNet, average_precision, batched_nms, decode, encode_targets, focal_loss, nms
from .loop import TaskConfig, evaluate, fit, load_checkpoint
from .scenes import SceneDataset, make_scenes, scene_splits
from .segmentation import Segmenter
