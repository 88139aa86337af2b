"""Lookahead on a model's weights: a slow copy that the training weights are pulled back to."""
import numbers

import numpy as np

from .. import backend


class Lookahead:
    """Lookahead (Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back", 2019), on
    the model rather than inside an optimizer, as airbench (Jordan 2024) uses it. A slow copy
    of every floating parameter and buffer is kept; every ``k`` optimizer steps

        slow <- slow + alpha (fast - slow)      (an exponential average of the fast weights)
        fast <- slow                            (training continues from the average)

    The average damps the noise of large-learning-rate SGD steps; restarting from it keeps
    the optimizer close to the averaged, better weights. alpha = 1 is plain training; alpha = 0
    returns to the slow weights (``sync(0.0)`` at the end of a run puts the average in the
    model). Buffers (batch norm's running statistics) are averaged too, so that they describe
    the averaged weights. The optimizer's own state (momentum) is left as it is.

    Args:
        model: the Module being trained; build the Lookahead after moving it to its device.
        alpha: a float in [0, 1], or a function of the step count returning one (airbench:
            1 - 0.95^5 (t / T)^3, following the fast weights early and averaging late).
        k: optimizer steps between synchronisations.
        buffers: average the floating buffers too.

        lookahead = optim.Lookahead(model, alpha=0.5, k=5)
        for x, y in loader:
            ...; opt.step(); lookahead.step()
        lookahead.sync(0.0)
    """

    def __init__(self, model, alpha=0.5, k=5, buffers=True):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Lookahead: k must be an integer >= 1, got {k!r}")
        if not callable(alpha):
            _check_alpha(alpha)
        self.model, self.alpha, self.k, self.buffers = model, alpha, k, buffers
        self.step_count = 0
        self.slow = {name: t.data.copy() for name, t in self._fast()}

    def _fast(self):
        """(name, Tensor) of the parameters and, with ``buffers``, buffers that are averaged."""
        named = list(self.model.named_parameters())
        if self.buffers:
            named += list(self.model.named_buffers())
        return [(name, t) for name, t in named if t.dtype.kind == "f"]

    def step(self):
        """Count one optimizer step; every k-th, ``sync`` with alpha (at this step count).
        Returns whether it synchronised."""
        self.step_count += 1
        if self.step_count % self.k:
            return False
        self.sync(self.alpha(self.step_count) if callable(self.alpha) else self.alpha)
        return True

    def sync(self, alpha):
        """slow <- slow + alpha (fast - slow); fast <- slow, for every tracked tensor."""
        alpha = _check_alpha(alpha)
        for name, t in self._fast():
            slow = self.slow[name]
            slow += alpha * (t.data - slow)
            t.data[...] = slow

    def state_dict(self):
        """``{'step_count', 'k', 'slow': {name: host array copy}}`` (a callable alpha is not
        saved: the caller builds it again)."""
        return {"step_count": self.step_count, "k": self.k,
                "slow": {name: np.array(backend.to_numpy(a)) for name, a in self.slow.items()}}

    def load_state_dict(self, state):
        """Restore a ``state_dict()`` of a Lookahead over the same model, exactly."""
        slow = state["slow"]
        if set(slow) != set(self.slow):
            raise ValueError(f"Lookahead: the saved state holds {sorted(set(slow) ^ set(self.slow))[:5]} "
                             "that this model does not, or the reverse")
        for name, t in self._fast():
            if tuple(slow[name].shape) != tuple(t.shape):
                raise ValueError(f"Lookahead: {name} has shape {tuple(slow[name].shape)} in the saved state, "
                                 f"{tuple(t.shape)} in the model")
        self.slow = {name: backend.array_module(t.data).array(backend.to_numpy(slow[name]), dtype=t.dtype)
                     for name, t in self._fast()}
        self.step_count, self.k = int(state["step_count"]), int(state["k"])


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Lookahead: alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)
