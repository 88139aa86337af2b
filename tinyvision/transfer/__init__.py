"""Transfer learning: fine-tuning, self-supervised pretraining, class-split transfer.

    from tinyvision import transfer
    task = transfer.build_pretext("mae", "vit_cifar_tiny")            # or 'position', 'rotation'
    loss, _ = task.loss(images)                                        # normalised (B, 3, 32, 32)
    transfer.save_backbone(task, "vit_mae.safetensors")
    model, info = transfer.build_finetune_model("vit_mae.safetensors", num_classes=5, mode="linear")

Command line: ``python -m tinyvision pretrain ...`` and ``python -m tinyvision finetune ...``
(see ``transfer.cli``); the experiment of ``benchmarks/transfer_experiment.py`` lives in
``transfer.experiment``.
"""
from .finetune import (MODES, FinetuneOptions, FinetuneTrainer, build_finetune_model, finetune_datasets,
                       finetune_param_groups, frozen_norms, load_weights, source_architecture,
                       trainable_prefixes)
from .pretext import (METHODS, MaskedAutoencoder, PositionPrediction, PretextTask, RotationPrediction,
                      build_pretext, patchify, random_permutations, rotate_images, save_backbone,
                      shuffle_patches, unpatchify)
from .splits import ClassSplit, label_fraction_indices, parse_classes
from .trainer import AdaptedTrainer, PretextTrainer, Resize, model_transform
