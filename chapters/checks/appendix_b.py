"""Self-checks of appendix B's exercises (numerical gradients, Bayes, softmax and cross-entropy)."""
import numpy as np

import tinyvision as tv

from . import as_array, gradcheck_backward, self_check

def _central_difference_error(h, dtype=np.float32):
    """Mean |(sin(x + h) - sin(x - h)) / 2h - cos(x)| over 401 points x in [0.5, 1.5], computed
    in ``dtype``: the error a finite-difference gradient check with step h makes there."""
    x = np.linspace(0.5, 1.5, 401, dtype=dtype)[:, None]
    h = np.atleast_1d(np.asarray(h, dtype=dtype))
    estimate = (np.sin(x + h) - np.sin(x - h)) / (2 * h)
    return np.abs(estimate - np.cos(x.astype(np.float64))).mean(axis=0)


@self_check
def float32_step(h):
    """Exercise: the central-difference step h with the smallest error in float32."""
    h = float(h)
    if not 0 < h < 1:
        return False, f"a step h between 0 and 1, got {h}"
    grid = np.logspace(-6, 0, 61)
    errors = _central_difference_error(grid)
    best, err = grid[errors.argmin()], float(_central_difference_error(h)[0])
    return (err <= 2 * errors.min(),
            f"h = {h:.1e} gives mean error {err:.1e}; the best step measured, h = {best:.1e}, gives "
            f"{errors.min():.1e}" + ("" if err <= 2 * errors.min() else
                                     " (balance h^2/6 |f'''| against eps |f| / h with float32's eps)"))


@self_check
def false_alarm_rate(rate, prior=0.01, recall=0.95, target=0.90):
    """Exercise: the false-alarm rate at which a detector of a 1% class has 90% precision."""
    rate = float(rate)
    if not 0 <= rate <= 1:
        return False, f"a rate is a probability in [0, 1], got {rate}"
    precision = recall * prior / (recall * prior + rate * (1 - prior))
    ok = abs(precision - target) < 0.005
    return ok, f"a false-alarm rate of {rate:.5f} gives precision {precision:.3f}" + (
        "" if ok else f", not {target:.2f}; solve Bayes' formula for the false-alarm rate")


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@self_check
def softmax_backward(backward):
    """Exercise: softmax's backward pass, dL/dz from p and dL/dp, checked by tv.gradcheck."""
    p = np.random.default_rng(1).dirichlet(np.ones(5), size=4)
    _, problem = as_array(backward(p, np.ones_like(p)), p.shape, "softmax_backward(p, grad)")
    if problem:
        return False, problem
    return gradcheck_backward(_softmax, lambda z, p, grad: backward(p, grad), np.random.default_rng(2).normal(size=(4, 5)),
                      "dp_i/dz_j = p_i (delta_ij - p_j); sum over i")


@self_check
def smoothed_cross_entropy_grad(grad_fn, eps=0.1):
    """Exercise: dL/dz of the mean cross-entropy with label smoothing eps, checked by tv.gradcheck
    against central differences of the loss."""
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(4, 5)) * 2, rng.integers(0, 5, size=4)
    _, problem = as_array(grad_fn(z.copy(), y.copy(), eps), z.shape, "smoothed_cross_entropy_grad(z, y, eps)")
    if problem:
        return False, problem
    q = np.full(z.shape, eps / z.shape[1])
    q[np.arange(len(y)), y] += 1 - eps
    loss = lambda z: -(q * np.log(_softmax(z))).sum() / len(z)
    return gradcheck_backward(loss, lambda z, out, grad: grad * grad_fn(z, y, eps), z,
                      "the loss is a mean over N, and sum_k q_ik = 1")
