"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """SGD, exactly PyTorch's update. Per parameter p with gradient g, at step t:

        g <- g + wd * p                                  (weight decay, if wd != 0)
        b_1 = g;  b_t = mu * b_{t-1} + (1 - dampening) * g   (momentum buffer, if mu != 0)
        g <- g + mu * b_t   (nesterov)   or   g <- b_t   (heavy ball)
        p <- p - lr * g

    The first buffer is the gradient itself, not (1 - dampening) g. Weight decay here is the
    L2 penalty (wd / 2) ||p||^2 added to the loss, so it also goes through the momentum.

    Args:
        params: Tensors or parameter groups (see ``Optimizer``).
        lr: learning rate (required).
        momentum: mu, the momentum factor (0: plain SGD).
        dampening: scales the new gradient's share of the buffer.
        weight_decay: wd, the L2 coefficient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_options(self, o):
        for name in ("lr", "momentum", "weight_decay"):
            if o[name] < 0:
                raise ValueError(f"SGD: {name} must be >= 0, got {o[name]}")
        if o["nesterov"] and (o["momentum"] <= 0 or o["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={o['momentum']}, dampening={o['dampening']}")

    def _update(self, p, g, state, group):
        # Options as Python floats: a float64 NumPy scalar would promote float32 arrays (the
        # update would allocate float64 temporaries and round twice); a Python float is cast to
        # the array's dtype.
        lr, mu, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        dampening = float(group["dampening"])
        d, owned = g, False                  # the step direction; `owned`: a temporary we may overwrite
        if wd != 0:
            d, owned = p * wd, True          # g + wd p without touching p.grad, which the user may read
            d += g
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= mu
                if dampening != 0:
                    buf += (1.0 - dampening) * d
                else:
                    buf += d
            if group["nesterov"]:
                if owned:
                    d += mu * buf
                else:
                    d, owned = d + mu * buf, True
            else:
                d, owned = buf, False        # the buffer is state: never scale it in place
        if owned:
            d *= lr                          # reuse the temporary for lr * d
            p -= d
        else:
            p -= lr * d
