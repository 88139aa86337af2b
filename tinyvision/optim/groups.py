"""Parameter groups: which weights get weight decay."""


def param_groups_weight_decay(model_or_named_params, weight_decay, skip=()):
    """Two parameter groups, as timm builds them: the weights with ``weight_decay``, and
    biases, 1-D parameters (norm scales and shifts) and the names in ``skip`` with none.

    Decay pulls weights towards 0, which regularises the matrices and kernels that scale
    activations; a bias or a norm's gain/shift is an offset or a scale whose decay only
    fights the normalisation, and class tokens or position embeddings are lookups.

    Args:
        model_or_named_params: a Module (its ``named_parameters()``; its ``no_weight_decay()``
            names, as ViT's 'cls_token' and 'pos_embed', are skipped too) or an iterable of
            (name, Tensor) pairs.
        weight_decay: the decay of the first group.
        skip: more names to exempt: a parameter is exempt when its name equals an entry or
            ends with '.' + entry.

    Returns:
        ``[{'params': decayed, 'weight_decay': weight_decay}, {'params': exempt, 'weight_decay': 0.0}]``,
        leaving out a group that would be empty. Frozen parameters (requires_grad False) are
        left out, as in timm: build the optimizer after freezing or unfreezing.
    """
    skip = set(skip)
    if hasattr(model_or_named_params, "named_parameters"):
        if hasattr(model_or_named_params, "no_weight_decay"):
            skip |= set(model_or_named_params.no_weight_decay())
        named = model_or_named_params.named_parameters()
    else:
        named = model_or_named_params
    decay, exempt = [], []
    for name, p in named:
        if not p.requires_grad:
            continue
        skipped = name in skip or any(name.endswith("." + s) for s in skip)
        if p.ndim <= 1 or name == "bias" or name.endswith(".bias") or skipped:
            exempt.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": exempt, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
