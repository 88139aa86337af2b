"""tinyvision: a from-scratch deep-learning library for computer vision on NumPy and CuPy."""
from . import backend, parallel
from .backend import (cuda_available, get_default_device, manual_seed, set_default_device)
from .parallel import get_num_threads, restore_process_settings, set_num_threads
from .kernels import use_reference_kernels
from .tensor import Tensor, arange, is_grad_enabled, no_grad, ones, rand, randn, tensor, zeros
from .ops import (abs, cat, chunk, clip, concatenate, exp, flatten, gelu, log, log_softmax,
                  logsumexp, matmul, max, maximum, mean, min, minimum, permute, relu, reshape,
                  sigmoid, softmax, split, sqrt, squeeze, stack, sum, swapaxes, tanh, transpose,
                  unsqueeze, var, where, pad)
from .gradcheck import GradcheckError, gradcheck
from . import nn
from . import data, metrics, models, optim
from .models.summary import summary
from .serialization import load, save

float32 = backend.float32
float64 = backend.float64
__version__ = "0.1.0"
