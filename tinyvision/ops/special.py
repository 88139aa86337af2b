"""Special functions NumPy lacks, on NumPy and CuPy arrays (no gradient: plain functions)."""
import math

import numpy as np

from .. import backend

# constants of the standard normal distribution (GELU)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def erf(x):
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    NumPy has no erf, so: CuPy uses its own kernel; a NumPy float64 array uses the exact
    ``math.erf`` per element (gradient checks need full precision); float32 uses the
    Abramowitz-Stegun 7.1.26 rational approximation, whose absolute error 1.5e-7 is at
    float32's resolution:
        erf(x) = 1 - (a1 t + a2 t^2 + a3 t^3 + a4 t^4 + a5 t^5) e^(-x^2),  t = 1/(1 + p x),  x >= 0.
    """
    xp = backend.array_module(x)
    if xp is not np:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    if x.dtype == np.float64:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    # Evaluated in place on two buffers: this runs on every MLP activation of a ViT, and
    # a dozen fresh temporaries cost more than the arithmetic.
    t = np.abs(x)
    e = np.multiply(t, t)
    np.negative(e, out=e)
    np.exp(e, out=e)                                   # exp(-x^2)
    t *= 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)                            # t = 1 / (1 + p|x|)
    poly = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    poly *= e
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)
