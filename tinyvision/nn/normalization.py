"""Batch and layer normalisation layers (the fused forward/backward lives in ``ops.norm``), and
``update_bn``, which re-estimates the batch norm layers' running statistics."""
import itertools

import numpy as np

from .. import backend, ops
from ..tensor import no_grad
from . import init
from .module import Module, new_parameter


class _BatchNorm(Module):
    """Per-channel normalisation with batch statistics (training) or running estimates
    (evaluation); the shared code of BatchNorm1d and BatchNorm2d."""

    input_shapes = ()  # the accepted input ranks and how to print them

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = dict(device=device, dtype=dtype)
        if affine:
            self.weight = init.ones_(new_parameter((num_features,), **kw))
            self.bias = init.zeros_(new_parameter((num_features,), **kw))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            xp = backend.xp_for(backend.check_device(device or backend.get_default_device()))
            self.register_buffer("running_mean", xp.zeros(num_features, dtype=dtype or np.float32))
            self.register_buffer("running_var", xp.ones(num_features, dtype=dtype or np.float32))
            self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        if x.ndim not in self.input_shapes or x.shape[1] != self.num_features:
            shapes = " or ".join(self.input_shapes[n].format(C=self.num_features) for n in self.input_shapes)
            raise ValueError(f"{type(self).__name__} expected input {shapes}, got {tuple(x.shape)}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative moving average: running = mean of all batches so far
                momentum = 1.0 / int(self.num_batches_tracked.data)
        # Batch statistics in training, and always when there are no running estimates;
        # ops.batch_norm updates the running estimates in place when it is given them in training.
        return ops.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              training=self.training or not self.track_running_stats,
                              momentum=momentum or 0.0, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features (N, C) or sequences (N, C, L), per channel c:

        y = gamma_c (x - mu_c) / sqrt(var_c + eps) + beta_c

    where mu_c, var_c (biased) are taken over the batch (and L) in training, and the running
    estimates in evaluation. Training also updates, in place,
        running_mean = (1 - momentum) running_mean + momentum mu_c
        running_var  = (1 - momentum) running_var  + momentum var_c M / (M - 1)   (unbiased, M values)
    and counts num_batches_tracked (momentum=None: running = plain average over all batches).

    Shapes: x (N, C) or (N, C, L) -> same shape; gamma, beta, running stats (C,).
    """

    input_shapes = {2: "(N, {C})", 3: "(N, {C}, L)"}


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of images per channel c, statistics over (N, H, W):

        y = gamma_c (x - mu_c) / sqrt(var_c + eps) + beta_c

    with the running-estimate update of ``BatchNorm1d``.

    Shapes: x (N, C, H, W) -> same shape; gamma, beta, running stats (C,).
    """

    input_shapes = {4: "(N, {C}, H, W)"}


@no_grad()
def update_bn(loader, model, max_images=None):
    """Recompute the running mean and variance of every batch norm layer of ``model`` from
    the batches of ``loader`` (PyTorch's ``torch.optim.swa_utils.update_bn``).

    Batch norm normalises with batch statistics in training and with running estimates in
    evaluation. Those estimates are an exponential average over the last few hundred training
    batches (momentum 0.1), so they describe the inputs and weights of that stretch of
    training; when evaluation sees something else (averaged weights, or whole images after
    training on crops: ``ProgressiveTrainer``) they are wrong for it. This replaces them by
    the plain average over the loader's batches:

        running_mean = (1/B) sum_b mu_b,     running_var = (1/B) sum_b var_b * M_b / (M_b - 1)

    (B batches, mu_b and var_b the per-channel statistics of batch b over its M_b values; the
    layers' cumulative mode, momentum=None.)

    Each batch is ``x`` or a tuple/list whose first item is ``x``, the model's input; with
    ``max_images``, it stops after the batch that reaches it. No gradients; weights do not
    change; momenta and each module's training/evaluation mode are restored.

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


class LayerNorm(Module):
    """Normalisation of each sample over its trailing ``normalized_shape`` dimensions D:

        y = gamma (x - mu) / sqrt(var + eps) + beta,   mu, var (biased) over the D axes

    with elementwise gamma, beta of shape D (when elementwise_affine).

    Shapes: x (..., *D) -> same shape.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        kw = dict(device=device, dtype=dtype)
        self.weight = init.ones_(new_parameter(shape, **kw)) if elementwise_affine else None
        self.bias = init.zeros_(new_parameter(shape, **kw)) if elementwise_affine and bias else None

    def forward(self, x):
        D = self.normalized_shape
        if x.ndim < len(D) or x.shape[x.ndim - len(D):] != D:
            raise ValueError(f"LayerNorm expected input (..., {', '.join(map(str, D))}), got {tuple(x.shape)}")
        if self.weight is not None and self.bias is None:
            # ops.layer_norm takes both affine parameters or neither: scale after normalising.
            return ops.layer_norm(x, D, None, None, self.eps) * self.weight
        return ops.layer_norm(x, D, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
