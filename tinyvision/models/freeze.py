"""Freezing: set ``requires_grad`` off on a pretrained backbone and train only some layers
(the fine-tuning recipes that use it are in ``tinyvision.transfer.finetune``).

    model = tv.models.create("resnet18", num_classes=1000)
    tv.models.load_pretrained(model, "resnet18.safetensors")
    model.reset_classifier(10)            # a fresh 10-way head
    tv.models.freeze(model)               # everything but the head: requires_grad=False

A frozen parameter takes no part in backpropagation (the engine records no gradient path to
it, so its ``.grad`` stays None) and an optimizer skips it. Batch norm layers in a frozen
part still update their running statistics in training mode; call ``.eval()`` on those
modules to keep them fixed too.
"""


def _matches(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _classifier_prefixes(model):
    if not hasattr(model, "get_classifier"):
        raise ValueError(f"{type(model).__name__} has no get_classifier(); name the layers to keep "
                         "trainable with except_=('fc',) or the like")
    head = model.get_classifier()
    return tuple(name for name, m in model.named_modules() if m is head)


def freeze(model, except_=None):
    """Set requires_grad=False on every parameter of ``model`` except those under the
    module names in ``except_`` (dotted prefixes such as ('fc',), ('head', 'blocks.11'));
    None keeps the classifier (``get_classifier()``: ``fc`` of a ResNet, ``head`` of a ViT)
    trainable. Returns the names of the parameters left trainable."""
    keep = _classifier_prefixes(model) if except_ is None else tuple(except_)
    known = {name for name, _ in model.named_modules()} | {name for name, _ in model.named_parameters()}
    unknown = [p for p in keep if p not in known]
    if unknown:
        raise ValueError(f"freeze: {unknown} name no module or parameter of {type(model).__name__}")
    trainable = []
    for name, p in model.named_parameters():
        flag = _matches(name, keep)
        p.requires_grad_(flag)
        if flag:
            trainable.append(name)
        else:
            p.grad = None  # a stale gradient would still be applied by an optimizer
    return trainable


def unfreeze(model, only=None):
    """Set requires_grad=True on every parameter (or on those under the module names in
    ``only``, e.g. ('layer4',) to fine-tune the last stage too)."""
    for name, p in model.named_parameters():
        if only is None or _matches(name, only):
            p.requires_grad_(True)
    return model
