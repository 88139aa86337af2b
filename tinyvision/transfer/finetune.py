"""Fine-tuning: adapt a pretrained model to a new classification task.

    model, info = build_finetune_model("runs/resnet20/best.tvz", num_classes=5, mode="partial")
    groups = finetune_param_groups(model, lr=0.05, weight_decay=5e-4, backbone_lr_scale=0.1)

Weights come from a training checkpoint (``.tvz`` of ``tinyvision train``), a pretext
checkpoint or backbone file of ``tinyvision pretrain``, or a ``.safetensors`` file (timm /
torchvision names, e.g. downloaded weights; ``models.load_pretrained`` maps the names and
resamples a ViT's position embeddings to the model's patch grid). The classifier is always
replaced by a fresh one with ``num_classes`` outputs: its old rows belong to other classes.

Modes (what is trained):

- ``full``: every weight. The backbone usually takes a smaller step than the new head,
  lr_backbone = backbone_lr_scale * lr, since it starts near a good solution while the head
  starts at random (large early head gradients would otherwise wreck the features).
- ``linear``: a linear probe, only the head: y = W f(x) + b with f frozen. Batch norm layers
  of the backbone stay in evaluation mode (their running statistics frozen too), so f is a
  fixed function and the probe measures the pretrained features as they are.
- ``partial``: the first ``freeze_stages`` stages (ResNet: stem + layer1..layerK) or blocks
  (ViT: patch embedding, class token, position embeddings + blocks 0..K-1) are frozen, the
  rest trained: early layers hold generic edges and textures, late ones task-specific parts.
"""
import dataclasses
import json
import os

from .. import backend, data, models, nn, optim
from ..models.pretrained import fit_pos_embed, load_state, read_safetensors, safetensors_metadata
from ..serialization import classifier_checkpoint, file_kind, load
from .splits import ClassSplit, label_fraction_indices
from .trainer import AdaptedTrainer

MODES = ("full", "linear", "partial")


def source_architecture(path):
    """(model name, builder kwargs) recorded in a weights file, or (None, {}) where it has
    none: a training or pretext ``.tvz`` keeps its config; a ``.safetensors`` written by
    ``tinyvision pretrain`` keeps ``architecture`` and ``model_kwargs`` in its header. The
    file's kind is read from its bytes, not its name; CheckpointError for anything else."""
    if file_kind(path) == "safetensors":
        read_safetensors(path)   # a damaged file: one line that says so
        meta = safetensors_metadata(path)
        return meta.get("architecture"), json.loads(meta.get("model_kwargs", "{}"))
    state = load(path)
    config = state.get("config", {}) if isinstance(state, dict) else {}
    if "task" in config:   # a detection/segmentation model's: the error says so
        classifier_checkpoint(state, path)
    return config.get("model"), dict(config.get("model_kwargs", {}))


def _state_from_checkpoint(path):
    """The weights of a ``.tvz``: a training checkpoint's ``model``, with the ``backbone.``
    prefix of a pretext wrapper removed (its heads, under other names, do not load)."""
    state = load(path)
    weights = state["model"] if "model" in state else state
    if any(k.startswith("backbone.") for k in weights):
        weights = {k[len("backbone."):]: v for k, v in weights.items() if k.startswith("backbone.")}
    return weights


def load_weights(model, path, strict=True):
    """Load a ``.tvz`` or ``.safetensors`` file into ``model``, all but its classifier, which
    the caller replaces (a fine-tuned model's new head, or none in a backbone): its names may
    be missing, of other shapes or left over in the file. Every other name must match, or
    CheckpointError names each difference (``models.pretrained.load_state``); strict=False
    loads what fits instead. A ViT's position table is resampled to the model's grid.

    Returns ``LoadResult(missing_keys, unexpected_keys, mismatched_keys)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weights file at {path!r}")
    holds, _ = source_architecture(path)
    head = classifier_prefixes(model)
    if file_kind(path) == "safetensors":
        return models.load_pretrained(model, path, strict=strict, replaced=head)
    state = fit_pos_embed(dict(_state_from_checkpoint(path)), model)
    return load_state(model, state, path, strict, replaced=head, holds=holds)


def classifier_prefixes(model):
    """Module names of the classifier (``fc`` of a ResNet, ``head`` of a ViT)."""
    head = model.get_classifier()
    return [name for name, m in model.named_modules() if m is head]


def trainable_prefixes(model, mode, freeze_stages=None):
    """Module/parameter names left trainable by ``mode`` (None: everything, mode 'full').
    For 'partial', ``freeze_stages`` (default: all stages but the last of a ResNet, the first
    half of a ViT's blocks) counts the frozen stages or blocks after the stem/embedding."""
    if mode not in MODES:
        raise ValueError(f"unknown fine-tuning mode {mode!r}; choose from {MODES}")
    if mode == "full":
        return None
    head = classifier_prefixes(model)
    if mode == "linear":
        return head
    if hasattr(model, "blocks"):                      # ViT: blocks K.., final norm, head
        depth = len(model.blocks)
        k = depth // 2 if freeze_stages is None else freeze_stages
        if not 0 <= k <= depth:
            raise ValueError(f"freeze_stages={k}: this ViT has {depth} blocks")
        return [f"blocks.{i}" for i in range(k, depth)] + ["norm"] + head
    if hasattr(model, "num_stages"):                  # ResNet: layerK+1.., head
        n = model.num_stages
        k = n - 1 if freeze_stages is None else freeze_stages
        if not 0 <= k <= n:
            raise ValueError(f"freeze_stages={k}: this ResNet has {n} stages")
        return [f"layer{i + 1}" for i in range(k, n)] + head
    raise ValueError(f"mode 'partial' knows ResNets and ViTs, not {type(model).__name__}")


def frozen_norms(model):
    """Batch norm layers whose parameters are all frozen: they must also stay in evaluation
    mode, or training would keep moving their running statistics (and their outputs)."""
    return [m for m in model.modules() if isinstance(m, nn.normalization._BatchNorm)
            and not any(p.requires_grad for p in m.parameters())]


def build_finetune_model(source, num_classes, mode="full", model=None, freeze_stages=None, strict=True,
                         **model_kwargs):
    """A model for fine-tuning: architecture from ``source`` (or ``model``, which a plain
    ``.safetensors`` needs), weights loaded by ``load_weights`` (strict=False: also when
    names other than the classifier's are missing or of other shapes), a fresh
    ``num_classes`` head, parameters frozen as ``mode`` says.

    ``model_kwargs`` go to the builder (e.g. ``img_size=224``; a ViT's position embeddings
    are resampled from a ``.safetensors`` file of another grid).
    Returns (model, info): info has 'architecture', 'load' (LoadResult) and 'trainable'
    (names of the trainable parameters)."""
    recorded, recorded_kwargs = source_architecture(source)
    name = model or recorded
    if name is None:
        raise ValueError(f"{source} does not say which model it holds; pass the architecture "
                         "(--model vit_tiny_patch16_224, say)")
    kwargs = dict(recorded_kwargs if name == recorded else {}, **model_kwargs)
    net = models.create(name, num_classes=num_classes, **kwargs)
    result = load_weights(net, source, strict)
    net.reset_classifier(num_classes)
    keep = trainable_prefixes(net, mode, freeze_stages)
    trainable = [n for n, _ in net.named_parameters()] if keep is None else models.freeze(net, except_=keep)
    return net, {"architecture": name, "model_kwargs": kwargs, "load": result, "trainable": trainable}


def finetune_param_groups(model, lr, weight_decay, backbone_lr_scale=1.0, backbone=None):
    """Optimizer groups: the new parts at ``lr``, the pretrained backbone's trainable
    parameters at ``backbone_lr_scale * lr``; each split into decayed weights and undecayed
    biases/norms (``optim.param_groups_weight_decay``). Frozen parameters are left out; empty
    groups too. Each group carries 'name' ('head' or 'backbone') for logs.

    ``backbone``: the sub-module that holds the pretrained weights (a detector's or
    segmenter's ``model.backbone``); by default everything but ``model.get_classifier()``."""
    if backbone is None:
        head_ids = {id(p) for p in model.get_classifier().parameters()}
    else:
        backbone_ids = {id(p) for p in backbone.parameters()}
        head_ids = {id(p) for p in model.parameters() if id(p) not in backbone_ids}
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = []
    for part, scale in (("head", 1.0), ("backbone", backbone_lr_scale)):
        params = [(n, p) for n, p in named if (id(p) in head_ids) == (part == "head")]
        for group in optim.param_groups_weight_decay(params, weight_decay, skip=skip):
            groups.append(dict(group, lr=lr * scale, name=part))
    return groups


@dataclasses.dataclass
class FinetuneOptions:
    """What fine-tuning adds to a ``TrainConfig``.

    source: the weights file. mode: 'full' | 'linear' | 'partial'. backbone_lr_scale: the
    backbone's lr as a fraction of the head's. freeze_stages: for 'partial' (None: default).
    classes: original class ids to keep, relabelled 0..k-1 in this order (None: all).
    label_fraction: stratified fraction of the training labels (None: all, or cfg.subset per
    class). model: architecture, for a ``.safetensors`` that does not record it.
    img_size: input size for builders that take one (resize CIFAR up, e.g. 224).
    strict: False loads a file whose names (other than the classifier's) differ from the
    model's, leaving those weights at their initial values (``--allow-missing``)."""
    source: str
    mode: str = "full"
    backbone_lr_scale: float = 0.1
    freeze_stages: int = None
    classes: list = None
    label_fraction: float = None
    model: str = None
    img_size: int = None
    strict: bool = True


def finetune_datasets(root, classes=None, subset=None, label_fraction=None, test_subset=None, seed=0):
    """(train, test) for a target task: CIFAR-10 from ``root``, only ``classes`` (relabelled;
    None: all ten), then ``subset`` images per class or a stratified ``label_fraction`` of
    the training images, and ``test_subset`` test images per class."""
    train_set, test_set = data.CIFAR10(root, train=True), data.CIFAR10(root, train=False)
    if classes is not None:
        train_set, test_set = ClassSplit(train_set, classes), ClassSplit(test_set, classes)
    if subset and label_fraction:
        raise ValueError("give a subset (images per class) or a label fraction, not both")
    if subset:
        train_set = data.Subset(train_set, data.per_class_subset(train_set.targets, subset))
    elif label_fraction:
        train_set = data.Subset(train_set, label_fraction_indices(train_set.targets, label_fraction, seed))
    if test_subset:
        test_set = data.Subset(test_set, data.per_class_subset(test_set.targets, test_subset))
    return train_set, test_set


class FinetuneTrainer(AdaptedTrainer):
    """``train.Trainer`` for fine-tuning: the model from ``options.source`` with a new head
    for the target classes, the target data, head/backbone learning rates, and the frozen
    batch norm layers held in evaluation mode. ``cfg`` gives the recipe and the loop's
    options (its ``model`` is replaced by the source's architecture); writes the same run
    folder as ``tinyvision train``, plus ``finetune.json`` (the options and what loaded)."""

    def __init__(self, cfg, options, progress=True, run_dir=None):
        kwargs = {"img_size": options.img_size} if options.img_size else {}
        backend.manual_seed(cfg.seed)   # the new head's initialisation is part of the run
        # the weights before the data: a file that does not fit fails before CIFAR-10 is decoded
        model, self.info = build_finetune_model(options.source, len(options.classes or data.CIFAR10.classes),
                                                options.mode, options.model, options.freeze_stages, options.strict,
                                                **kwargs)
        train_set, test_set = finetune_datasets(cfg.data, options.classes, cfg.subset, options.label_fraction,
                                                cfg.test_subset, cfg.seed)
        cfg = dataclasses.replace(cfg, model=self.info["architecture"],
                                  model_kwargs=dict(cfg.model_kwargs, **self.info["model_kwargs"]))
        recipe = cfg.resolved()
        groups = finetune_param_groups(model, recipe.lr, recipe.weight_decay, options.backbone_lr_scale)
        super().__init__(cfg, model, train_set, test_set, groups, progress=progress, run_dir=run_dir)
        self.options = options
        self.frozen_norms = frozen_norms(self.model)
        result = self.info["load"]
        self._write_json("finetune.json", dict(
            dataclasses.asdict(options), architecture=self.info["architecture"],
            trainable=self.info["trainable"], missing_keys=result.missing_keys,
            unexpected_keys=result.unexpected_keys, mismatched_keys=[list(m) for m in result.mismatched_keys]))

    def train_step(self, x, y):
        # Trainer.train_one_epoch puts the whole model in training mode; frozen batch norm
        # layers go back to evaluation mode before each step (a cheap flag flip).
        for m in self.frozen_norms:
            m.eval()
        return super().train_step(x, y)
