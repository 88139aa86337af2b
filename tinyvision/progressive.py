"""Progressive resizing: train the early epochs on small random crops, the last on whole images.

A convolution's cost grows with the pixels, so a 24 x 24 crop costs about (24/32)^2 = 0.56 of
a whole CIFAR image. The early epochs, at a high learning rate, learn coarse features that such
crops show as well; the last epochs see whole images, the ones the model is tested on. Plain
crops, not shrunken images, keep the objects at the size the test shows them (no train/test
scale gap to correct, as FixRes must; Touvron et al. 2019); the crop's random position
translates the image, as the padded crop does later. Measurements: docs/results.md,
"Progressive resizing".

    cfg.progressive = [[24, 18]]      epochs 1-18 on 24 x 24 crops, the rest on whole images
"""
import numpy as np

from . import data, nn
from .recipes import build_transform
from .tensor import Tensor, no_grad
from .train import Trainer


class ProgressiveTrainer(Trainer):
    """``Trainer`` that follows ``cfg.progressive``, a list of [size, until_epoch] phases: the
    0-based epochs before ``until_epoch`` train on size x size random crops (the first phase
    that has not ended), later epochs on whole images. Before a crop epoch is tested, batch
    norm's running statistics are re-estimated on ``cfg.bn_recalibration`` whole training
    images (``recalibrate_bn``). Without phases it is the plain ``Trainer``."""

    follows_fields = ("progressive",)

    def _build(self, cfg, model, datasets):
        super()._build(cfg, model, datasets)
        side = min(self.train_set.data.shape[1:3])
        too_big = [size for size, _ in cfg.progressive if size >= side]
        if too_big:
            raise ValueError(f"progressive: crop sizes must be smaller than the {side}-pixel "
                             f"training images, got {too_big}")
        # one transform per crop size, picked at the start of each epoch (train_one_epoch)
        self.train_transforms = {None: self.train_loader.transform}
        for size, _ in cfg.progressive:
            if size not in self.train_transforms:
                self.train_transforms[size] = self.crop_transform(size)
                self._check_model_takes(size)

    def crop_transform(self, size):
        """The training transform of a phase: size x size random crops of the unpadded images,
        then the rest of the recipe's augmentation and the model's normalisation."""
        mean, std = self.model.default_cfg["mean"], self.model.default_cfg["std"]
        return build_transform(self.cfg.augment, mean, std, crop=size)

    def train_crop(self, epoch):
        """The crop size that 0-based ``epoch`` trains on, or None for whole images."""
        for size, until in self.cfg.progressive:
            if epoch < until:
                return size
        return None

    def _check_model_takes(self, size):
        """One image through the model at size x size, so that a model with a fixed input size
        (a ViT's position embeddings) refuses progressive resizing now, not at the first step."""
        probe = np.zeros((1, self.train_set.data.shape[3], size, size), np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                self.model(Tensor(probe, device=self.device))
        except ValueError as err:
            raise ValueError(f"progressive: {self.cfg.model} cannot train on {size}px crops ({err})") from None
        finally:
            self.model.train(was_training)

    def train_one_epoch(self):
        # set before the loader is iterated: its prefetcher reads the transform when it starts
        self.train_loader.transform = self.train_transforms[self.train_crop(self.epoch)]
        return super().train_one_epoch()

    def evaluate(self, tta=None):
        if self.cfg.bn_recalibration and self.train_crop(self.epoch) is not None:
            self.recalibrate_bn()
        return super().evaluate(tta)

    def recalibrate_bn(self):
        """Re-estimate batch norm's running statistics on ``cfg.bn_recalibration`` whole training
        images (a fixed random sample, the test transform: no augmentation).

        After a crop epoch the running statistics average the crops' batches, while the test
        shows whole images: tested as they are, the accuracy understates the weights, and
        best.tvz would be chosen on the understated numbers. Training is unchanged: in
        training mode batch norm normalises with each batch's own statistics."""
        loader = data.DataLoader(self.train_set, batch_size=self.cfg.eval_batch_size, shuffle=True,
                                 seed=self.cfg.seed, transform=self.test_loader.transform, device=self.device)
        nn.utils.update_bn(loader, self.model, max_images=self.cfg.bn_recalibration)
