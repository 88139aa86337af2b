"""Neural-network layers built on the functional ops (PyTorch's ``torch.nn`` names)."""
from . import functional, init
from .module import Module, Parameter
from .container import Identity, ModuleDict, ModuleList, Sequential
from .linear import Linear
from .conv import Conv2d, ConvTranspose2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .dropout import Dropout
from .flatten import Flatten
from .sparse import Embedding
from .upsampling import Upsample
from .loss import CrossEntropyLoss, MSELoss

# ---- attention and position embeddings (attention.py, position.py): added by their author ----
from .attention import MultiheadSelfAttention, scaled_dot_product_attention
from .position import (LearnedPositionEmbedding, RelativePositionBias, SinCosPositionEmbedding1d,
                       SinCosPositionEmbedding2d, relative_position_index, sincos_1d, sincos_2d)
from . import utils
