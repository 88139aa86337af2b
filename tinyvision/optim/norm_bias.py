"""Parameter groups with a larger learning rate for batch norm's biases (airbench's recipe).

A batch norm layer is recognised by its running statistics (``running_mean``), so that ``optim``
imports nothing from ``nn`` (``nn.utils`` imports ``optim``'s clipping).
"""


def param_groups_norm_bias(model, lr, weight_decay, norm_bias_lr_scale=64.0, norm_bias_weight_decay=None):
    """Two parameter groups: every trainable parameter with (lr, weight_decay), except the
    biases of the batch norm layers, which get lr x ``norm_bias_lr_scale``.

    Why: a conv (or linear) weight followed by batch norm is scale-invariant, so its step moves
    the function by about lr / |w|^2, and weight decay keeps |w| small: such weights learn
    fast. A norm's bias is an offset with no such gain; airbench (Jordan 2024) finds it learns
    best at 64 times the weights' learning rate.

    Args:
        model: a Module; frozen parameters (requires_grad False) are left out, as in
            ``param_groups_weight_decay``: build the optimizer after freezing.
        lr, weight_decay: of the first group (SGD's L2 coefficient).
        norm_bias_lr_scale: the biases' learning rate over ``lr``.
        norm_bias_weight_decay: the biases' decay. None: weight_decay / norm_bias_lr_scale, so
            that lr x weight_decay, the fraction SGD shrinks a parameter by per step, is the
            same for both groups (airbench's choice); 0.0 exempts the biases.

    Returns:
        ``[{'params': rest, 'lr': lr, 'weight_decay': weight_decay},
        {'params': norm_biases, 'lr': lr * scale, 'weight_decay': ...}]``, leaving out an empty
        group. A scheduler scales each group's own lr (OneCycleLR: give one max_lr per group).
    """
    if not norm_bias_lr_scale > 0:
        raise ValueError(f"norm_bias_lr_scale: expected a number > 0, got {norm_bias_lr_scale!r}")
    scale = float(norm_bias_lr_scale)
    biases = {id(m.bias) for m in model.modules()
              if hasattr(m, "running_mean") and getattr(m, "bias", None) is not None}
    rest, norm_biases = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (norm_biases if id(p) in biases else rest).append(p)
    bias_decay = float(weight_decay) / scale if norm_bias_weight_decay is None else float(norm_bias_weight_decay)
    groups = [{"params": rest, "lr": float(lr), "weight_decay": float(weight_decay)},
              {"params": norm_biases, "lr": float(lr) * scale, "weight_decay": bias_decay}]
    return [g for g in groups if g["params"]]
