"""Adam (Kingma & Ba 2015) with L2 weight decay, and AdamW (Loshchilov & Hutter 2019) with
decoupled weight decay."""
import math

from .. import backend
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, exactly PyTorch's update (amsgrad=False). Per parameter p with gradient g, at step
    t = 1, 2, ...:

        g <- g + wd * p                              (L2 weight decay, if wd != 0)
        m_t = beta1 m_{t-1} + (1 - beta1) g          first moment,  m_0 = 0
        v_t = beta2 v_{t-1} + (1 - beta2) g^2        second moment, v_0 = 0
        p <- p - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    The bias corrections 1 / (1 - beta^t) undo the zero initialisation of m and v (without
    them the first steps would be far too small). Note eps is added after the correction of v,
    as PyTorch does (the paper's m_hat / (sqrt(v_hat) + eps)).

    Args:
        params: Tensors or parameter groups (see ``Optimizer``).
        lr: learning rate.
        betas: (beta1, beta2), the moments' decay rates.
        eps: added to the denominator for numerical stability.
        weight_decay: wd, the L2 coefficient (added to the gradient, so it is rescaled by
            the adaptive denominator: see ``AdamW`` for the decoupled form).
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _check_options(self, o):
        name = type(self).__name__
        if o["lr"] < 0 or o["eps"] < 0 or o["weight_decay"] < 0:
            raise ValueError(f"{name}: lr, eps and weight_decay must be >= 0, got lr={o['lr']}, "
                             f"eps={o['eps']}, weight_decay={o['weight_decay']}")
        if len(o["betas"]) != 2 or not all(0.0 <= b < 1.0 for b in o["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {o['betas']}")

    def _update(self, p, g, state, group):
        # Python floats throughout: NumPy float64 scalars would promote float32 arrays.
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        xp = backend.array_module(p)
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(p), xp.zeros_like(p)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if wd != 0:
            if self._decoupled:
                p *= 1.0 - lr * wd           # AdamW: shrink the weights, outside the adaptive step
            else:
                g = g + wd * p               # Adam: L2 into the gradient (a copy: p.grad stays as is)
        # One temporary per step, reused by every stage through out= (no other allocation).
        tmp = xp.multiply(g, 1.0 - beta1)
        m *= beta1
        m += tmp                             # m = beta1 m + (1 - beta1) g
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v *= beta2
        v += tmp                             # v = beta2 v + (1 - beta2) g^2
        xp.sqrt(v, out=tmp)
        tmp /= math.sqrt(1.0 - beta2 ** t)
        tmp += eps                           # sqrt(v_t / (1 - beta2^t)) + eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - beta1 ** t)       # the step size lr / (1 - beta1^t)
        p -= tmp


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, exactly PyTorch's update. At step t:

        p <- p (1 - lr * wd)                         (decay the weights directly)
        then Adam's step on the raw gradient g (no wd * p added to it):
        m_t = beta1 m_{t-1} + (1 - beta1) g,   v_t = beta2 v_{t-1} + (1 - beta2) g^2
        p <- p - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    With Adam's L2 form, wd * p is divided by sqrt(v) like the gradient, so weights with large
    gradients are barely decayed; decoupling makes the decay the same relative shrink for all.
    The decay is scaled by lr, so a schedule on lr also schedules it.

    Args: as ``Adam``; weight_decay defaults to 1e-2.
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
