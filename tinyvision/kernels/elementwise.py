"""Fast CPU kernels of elementwise ops (``ops.elementwise``): the same formulas, written into
preallocated outputs in place and split into row blocks over threads (``parallel.elementwise``).
These run on the widest activations of a network, where the temporaries of a plain NumPy
expression cost more than its arithmetic. Inputs are NumPy arrays.
"""
import numpy as np

from .. import parallel
from ..ops.special import INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI, erf


def add(a, b):
    """a + b, in a's memory order (a residual sum keeps the channel-major layout of the branch
    it continues), split over threads when large (``parallel.add``)."""
    return parallel.add(a, b)


def relu(a):
    """max(a, 0) in a's memory order."""
    y = np.empty_like(a)
    parallel.elementwise(lambda y, a: np.maximum(a, 0, out=y), y, a)
    return y


def relu_backward(g, y):
    """g * [y > 0], in the memory order of y (not of g: a gradient broadcast back from a global
    average pool is plain NCHW, while the batch norm and convolution before this ReLU work on
    channel-major memory and would each copy it over)."""
    gx = np.empty_like(y)
    parallel.elementwise(lambda gx, g, y: np.multiply(g, y > 0, out=gx), gx, g, y)
    return gx


def gelu_forward(a, approximate):
    """``ops.elementwise.gelu_forward`` on two buffers: y and the cache's Phi(a) or tanh(u)."""
    y, aux = np.empty_like(a), np.empty_like(a)
    parallel.elementwise(lambda y, aux, a: _gelu_forward_block(y, aux, a, approximate), y, aux, a)
    return y, (a, aux)


def _gelu_forward_block(y, aux, a, approximate):
    if approximate == "tanh":
        np.multiply(a, a, out=aux)
        aux *= 0.044715 * SQRT_2_OVER_PI
        aux += SQRT_2_OVER_PI
        aux *= a                                    # u = sqrt(2/pi) (a + 0.044715 a^3)
        np.tanh(aux, out=aux)
        np.add(aux, 1.0, out=y)
        y *= a
        y *= 0.5
    else:
        aux[...] = erf(a * INV_SQRT_2)
        aux += 1.0
        aux *= 0.5                                  # Phi(a)
        np.multiply(a, aux, out=y)


def gelu_backward(g, cache, approximate):
    """``ops.elementwise.gelu_backward`` into one buffer."""
    a, aux = cache
    gx = np.empty_like(g)
    parallel.elementwise(lambda d, g, aux, a: _gelu_backward_block(d, g, aux, a, approximate),
                         gx, g, aux, a)
    return gx


def _gelu_backward_block(d, g, aux, a, approximate):
    if approximate == "tanh":
        th = aux
        np.multiply(a, a, out=d)
        d *= 3 * 0.044715 * SQRT_2_OVER_PI
        d += SQRT_2_OVER_PI                        # du/da
        sech2 = th * th
        np.subtract(1.0, sech2, out=sech2)          # 1 - tanh^2 u
        d *= sech2
        d *= a
        d += th
        d += 1.0
        d *= 0.5                                    # dy/da
    else:
        np.multiply(a, a, out=d)
        d *= -0.5
        np.exp(d, out=d)
        d *= INV_SQRT_2PI
        d *= a
        d += aux                                    # Phi(a) + a phi(a)
    d *= g
