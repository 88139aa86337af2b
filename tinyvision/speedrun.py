"""The training loop of the CIFAR-10 speed run (recipe ``speedrun_cpu``, model ``cifar_speedrun``).

Written from the ideas of airbench94 (Keller Jordan, 2024), on top of ``train.Trainer``. The
recipe's plain options live in ``recipes``: Nesterov SGD with airbench's rates translated to a
batch-mean loss (``recipes.speedrun_sgd``: lr = 11.5 B / (1024 (1 + 1 / (1 - mu))), weight
decay 0.0153 / 11.5), batch norm biases at 64x the rate, the triangular schedule, label
smoothing 0.2, 2-pixel reflected translations and flip + shift TTA after the last epoch. The
four steps this trainer adds to the loop, each an option of ``TrainConfig``:

    before the first step   whitening conv from cfg.whitening_images training images
                            (models.speedrun.init_whitening): the blocks start on decorrelated input;
                            with 0 (or None) the conv's weights train like any other layer's
    each epoch e            alternating flips: image i mirrored iff first_i XOR (e odd)
                            the whitening bias trains while e < cfg.whiten_bias_epochs (optim.FreezeAfter)
    every k-th step         lookahead: slow <- slow + alpha_t (fast - slow); fast <- slow,
                            alpha_t = 1 - 0.95^5 (t / T)^3 (T: the run's steps)
    after the last step     the model takes the slow weights

Why each one: models/speedrun.py (the network's parts), ``AlternatingFlips`` and
``lookahead_alpha`` below. A checkpoint also holds the lookahead's slow weights and step count,
so ``--resume`` continues bit for bit; the flip pattern and the freezing depend on the epoch
alone.
"""
import numpy as np

from . import optim
from .errors import CheckpointError
from .models.speedrun import init_whitening
from .recipes import SPEEDRUN_FIELDS, build_transform
from .train import Trainer

# generator keys beside the DataLoader's [seed, epoch] and [seed, epoch, batch]: no epoch reaches them
FLIP_STREAM, WHITENING_STREAM = 0xF11F, 0x3417E


def lookahead_alpha(step, total_steps):
    """alpha_t = 1 - 0.95^5 (t / T)^3, the share of the fast weights a lookahead sync at step
    t keeps (airbench's). Near 1 early (the weights still move far: averaging would hold them
    back); down to 1 - 0.95^5 = 0.23 at the end, an average over about the last 20 steps that
    removes the noise of the large-rate SGD steps while the rate is annealed to 0."""
    return 1.0 - 0.95 ** 5 * min(step / total_steps, 1.0) ** 3


class AlternatingFlips:
    """``dataset`` (with ``data`` (N, H, W, C) and ``targets``) with a deterministic mirror
    pattern: in epoch e image i is mirrored iff first_i XOR (e odd), first_i a fair coin per
    image from ``seed``. So epoch 0 mirrors a random half and every next epoch exactly the
    other images: over two epochs each image is seen once each way, where random flips show
    half of them the same way twice, so fewer epochs give the net both views (airbench's
    ablation finds it worth a fraction of an epoch; chapter 5 measures it here).

    ``set_epoch(e)`` (before the loader iterates epoch e) makes ``data`` that epoch's images:
    one mirrored copy of the data set, made again only when the parity changes.
    """

    def __init__(self, dataset, seed):
        self.dataset, self.targets = dataset, dataset.targets
        self.classes = getattr(dataset, "classes", None)
        self.first = np.random.default_rng([seed, FLIP_STREAM]).random(len(dataset.data)) < 0.5
        self._parity = None
        self.set_epoch(0)

    def flips(self, epoch):
        """The (N,) booleans: which images epoch ``epoch`` mirrors."""
        return self.first ^ bool(epoch % 2)

    def set_epoch(self, epoch):
        if self._parity != epoch % 2:
            flip, source = self.flips(epoch), self.dataset.data
            self.data = source.copy()
            self.data[flip] = source[flip][:, :, ::-1]
            self._parity = epoch % 2

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i], self.targets[i]


class SpeedrunTrainer(Trainer):
    """``Trainer`` that also follows ``cfg.whitening_images``, ``cfg.whiten_bias_epochs``,
    ``cfg.lookahead_every`` and ``cfg.alternating_flip`` (see the module docstring). With all
    four off it is the plain ``Trainer``, except that a ``whiten`` conv's weights train. The
    model needs a ``whiten`` conv (``SpeedrunNet``) for the first two."""

    follows_fields = SPEEDRUN_FIELDS

    @classmethod
    def follows(cls, cfg):
        """Whether ``cfg`` sets an option only this trainer follows (the command line's choice)."""
        return any(getattr(cfg, name) not in (None, False, 0) for name in cls.follows_fields)

    def _build(self, cfg, model, datasets):
        super()._build(cfg, model, datasets)
        whiten = getattr(self.model, "whiten", None)
        if (cfg.whitening_images or cfg.whiten_bias_epochs is not None) and whiten is None:
            raise ValueError(f"whitening_images / whiten_bias_epochs: {cfg.model} has no whitening conv "
                             "(model.whiten); use cifar_speedrun or leave them unset")
        self.flips = None
        if cfg.alternating_flip:  # the loader reads this epoch's mirrored copy (set in train_one_epoch)
            self.flips = self.train_loader.dataset = AlternatingFlips(self.train_set, cfg.seed)
        self.whitening_eigenvalues = self.init_whitening() if cfg.whitening_images else None
        self.freeze = (optim.FreezeAfter([whiten.bias], cfg.whiten_bias_epochs)
                       if cfg.whiten_bias_epochs is not None else None)
        total = cfg.epochs * len(self.train_loader)
        # built after the whitening: the slow copy starts from the weights training starts from
        self.lookahead = (optim.Lookahead(self.model, alpha=lambda t: lookahead_alpha(t, total), k=cfg.lookahead_every)
                          if cfg.lookahead_every else None)

    def build_optimization(self):
        # no whitening from the data (airbench's ablation): the 2x2 conv is learned like the others,
        # rather than left a frozen random projection
        whiten = getattr(self.model, "whiten", None)
        if whiten is not None and not self.cfg.whitening_images:
            whiten.weight.requires_grad_(True)
        return super().build_optimization()

    def build_transforms(self):
        train, test = super().build_transforms()
        if self.cfg.alternating_flip:  # the mirroring is AlternatingFlips', not at random
            mean, std = self.model.default_cfg["mean"], self.model.default_cfg["std"]
            train = build_transform(self.cfg.augment, mean, std, random_flip=False)
        return train, test

    def init_whitening(self):
        """Set the whitening conv from ``cfg.whitening_images`` training images drawn with the
        run's seed (airbench takes its first 5000, in random order; the JPEG copy is stored
        class by class), as the model sees them: normalised, not augmented. Returns the
        patch covariance's eigenvalues."""
        n = min(self.cfg.whitening_images, len(self.train_set))
        pick = np.random.default_rng([self.cfg.seed, WHITENING_STREAM]).choice(len(self.train_set), n, replace=False)
        images = self.test_loader.transform(self.train_set.data[np.sort(pick)])
        return init_whitening(self.model, images)

    def train_one_epoch(self):
        if self.freeze is not None:
            self.freeze.step(self.epoch)
        if self.flips is not None:
            self.flips.set_epoch(self.epoch)
        row = super().train_one_epoch()
        if self.lookahead is not None and self.epoch + 1 == self.cfg.epochs:
            self.lookahead.sync(0.0)  # the run ends on the averaged weights
        return row

    def train_step(self, x, y):
        out = super().train_step(x, y)
        if self.lookahead is not None:
            self.lookahead.step()
        return out

    def state_dict(self):
        state = super().state_dict()
        if self.lookahead is not None:
            state["lookahead"] = self.lookahead.state_dict()
        return state

    def load_state_dict(self, state, source="the checkpoint"):
        super().load_state_dict(state, source)
        if self.lookahead is not None:
            if "lookahead" not in state:
                raise CheckpointError(f"{source} holds no lookahead weights; its run did not use lookahead")
            self.lookahead.load_state_dict(state["lookahead"])
