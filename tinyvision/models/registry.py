"""The model registry: build any model by name, with the configuration that goes with it.

Each builder function is registered with ``@register_model(default_cfg)``. The default config
tells the rest of the library how the model expects its data and how it is usually trained:

- ``input_size``: (C, H, W) of one image;
- ``mean``, ``std``: per-channel normalisation of the pixels (in [0, 1]) the model expects;
- ``recipe``: the name of a training recipe in ``tinyvision.recipes.RECIPES``
  ('resnet_sgd' or 'vit_adamw'), read by the training code from ``model.default_cfg``.

Some of these depend on the builder's arguments (``resnet18(small_input=True)`` takes CIFAR
images, ``vit_base_patch16_224(img_size=384)`` bigger ones), so ``default_cfg`` may also be a
function of the builder's keyword arguments that returns the dict.

    model = tv.models.create("resnet20", num_classes=10)
    model.default_cfg["recipe"]                   # 'resnet_sgd'
    tv.models.list_models("vit_*")
"""
import difflib
import fnmatch
import functools

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cifar_cfg(recipe, **extra):
    """Default config of a model for 32x32 CIFAR images."""
    return dict(input_size=(3, 32, 32), mean=CIFAR10_MEAN, std=CIFAR10_STD, recipe=recipe, **extra)


def imagenet_cfg(recipe, img_size=224, **extra):
    """Default config of a model for ImageNet-sized images."""
    return dict(input_size=(3, img_size, img_size), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                recipe=recipe, **extra)


_MODELS = {}  # name -> (builder, default_cfg dict or function of the builder's kwargs)


def register_model(default_cfg):
    """Decorator: register a builder ``fn(num_classes=..., **kwargs) -> Module`` under its
    function name, with ``default_cfg`` (a dict, or a function of the builder's keyword
    arguments returning one). Registering a name twice is an error (one model per name).

    The registered builder attaches ``model.default_cfg`` (with ``architecture`` and
    ``num_classes``) to what it builds, whether called directly or through ``create``; the
    model must have a ``num_classes`` attribute."""
    def decorator(fn):
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")

        @functools.wraps(fn)
        def builder(**kwargs):
            model = fn(**kwargs)
            model.default_cfg = dict(get_default_cfg(name, **kwargs), num_classes=model.num_classes)
            return model

        _MODELS[name] = (builder, default_cfg)
        return builder
    return decorator


def _entry(name):
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}{hint} (tv.models.list_models() lists all "
                       f"{len(_MODELS)} models)")
    return _MODELS[name]


def get_default_cfg(name, **kwargs):
    """The default config of model ``name`` as built with ``kwargs``, without building it."""
    _, cfg = _entry(name)
    cfg = cfg(**kwargs) if callable(cfg) else cfg
    return dict(cfg, architecture=name)


def create(name, num_classes=10, **kwargs):
    """Build the registered model ``name`` with ``num_classes`` outputs (``kwargs`` go to its
    builder, e.g. ``shortcut='B'``, ``drop_path_rate=0.1``) and attach ``model.default_cfg``
    (with ``num_classes``). Note the default of 10 classes (CIFAR-10), not 1000."""
    builder, _ = _entry(name)
    return builder(num_classes=num_classes, **kwargs)


def list_models(pattern=None):
    """Sorted names of the registered models, optionally filtered by a shell-style pattern
    ('resnet*', '*cifar*')."""
    names = sorted(_MODELS)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def is_model(name):
    return name in _MODELS
