"""``torch.optim.swa_utils`` names: re-estimating batch norm's running statistics.

Batch norm normalises with batch statistics in training and with running estimates in
evaluation. Those estimates are an exponential average over the last few hundred training
batches (momentum 0.1), so they describe the inputs and weights of that stretch of training.
When evaluation sees something else, they are wrong for it: averaged weights (SWA), or
whole images after training on smaller crops (progressive resizing: ``train`` calls this
before testing a crop epoch, see ``Trainer.recalibrate_bn`` for the measured effect).
``update_bn`` replaces them by the plain average over the batches of a loader:

    running_mean = (1/B) sum_b mu_b,     running_var = (1/B) sum_b var_b * M_b / (M_b - 1)

(B batches, mu_b and var_b the per-channel statistics of batch b over its M_b values; the
layers' cumulative mode, momentum=None.)
"""
import itertools

from ..nn.normalization import _BatchNorm
from ..tensor import no_grad


@no_grad()
def update_bn(loader, model, max_images=None):
    """Recompute the running mean and variance of every batch norm layer of ``model`` from
    the batches of ``loader`` (each ``x`` or a tuple/list whose first item is ``x``, as model
    inputs), without gradients; with ``max_images``, stopping after the batch that reaches it.
    Weights do not change; momenta and each module's training/evaluation mode are restored.

    Returns the number of images seen (0 for a model without batch norm, the loader unread).
    Raises ValueError when the loader yields nothing (the statistics are then left as they were)."""
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"update_bn: max_images must be a positive int or None, got {max_images!r}")
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    batches = iter(loader)
    first = next(batches, None)
    if first is None:
        raise ValueError("update_bn: the loader yielded no batches; the running statistics are unchanged")
    modes = [(m, m.training) for m in model.modules()]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative: after batch b, running = mean of batches 1..b
    model.train()
    seen = 0
    try:
        for batch in itertools.chain([first], batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x)
            seen += x.shape[0]
            if max_images is not None and seen >= max_images:
                break
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        for m, training in modes:
            object.__setattr__(m, "training", training)
    return seen
