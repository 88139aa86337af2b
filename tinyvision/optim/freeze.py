"""Progressive freezing: stop training some parameters after a number of epochs."""
from ..tensor import Tensor


class FreezeAfter:
    """Train ``params`` for the first ``epochs`` epochs only (airbench freezes the whitening
    conv's bias after 3: it sets the input of every later layer, and letting it move at the
    high learning rate all run long hurts more than it helps).

    Call ``step(epochs_done)`` at the start of every epoch (and after resuming): it sets
    requires_grad = (epochs_done < epochs) on each parameter and drops the gradient of a frozen
    one. A frozen parameter then gets no gradient from backward, and the optimizer skips it
    (no momentum or weight decay step either). The state is the epoch count alone, which the
    training loop already saves, so a resumed run freezes at the same point.

        freeze = optim.FreezeAfter([model.whiten.bias], epochs=3)
        for epoch in range(start, total):
            freeze.step(epoch)
            ...
    """

    def __init__(self, params, epochs):
        self.params = [params] if isinstance(params, Tensor) else list(params)
        if not all(isinstance(p, Tensor) for p in self.params):
            raise TypeError("FreezeAfter: params must be Tensors (model parameters)")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"FreezeAfter: epochs must be an integer >= 0, got {epochs!r}")
        self.epochs = epochs

    def step(self, epochs_done):
        """Freeze (or, before ``epochs``, unfreeze) the parameters; returns whether they train."""
        trains = epochs_done < self.epochs
        for p in self.params:
            p.requires_grad_(trains)
            if not trains:
                p.grad = None
        return trains
