"""Optimizers, learning-rate schedules and gradient clipping (PyTorch's ``torch.optim`` names),
and the weight averaging and freezing of fast CIFAR recipes (``Lookahead``, ``FreezeAfter``).

    opt = optim.AdamW(optim.param_groups_weight_decay(model, 0.05), lr=1e-3)
    sched = optim.LinearWarmup(optim.CosineAnnealingLR(opt, T_max=total - W), warmup_steps=W)
    for x, y in loader:
        opt.zero_grad(); loss_fn(model(x), y).backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step()
"""
from .optimizer import Optimizer, required
from .groups import param_groups_weight_decay
from .norm_bias import param_groups_norm_bias
from .lookahead import Lookahead
from .freeze import FreezeAfter
from .sgd import SGD
from .adam import Adam, AdamW
from .lr_scheduler import (CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR, OneCycleLR,
                           StepLR)
from .clip import clip_grad_norm_, clip_grad_value_

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups_weight_decay", "param_groups_norm_bias",
           "Lookahead", "FreezeAfter", "LRScheduler", "StepLR",
           "MultiStepLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup", "OneCycleLR", "clip_grad_norm_",
           "clip_grad_value_", "required"]
