"""Neural-network layers built on the functional ops (PyTorch's ``torch.nn`` names)."""
from . import init
from .module import Module, Parameter
from .container import Identity, ModuleDict, ModuleList, Sequential
from .linear import Linear
from .conv import Conv2d, ConvTranspose2d
