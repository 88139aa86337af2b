"""Transfer learning: fine-tuning modes and learning rates, pretext tasks, weight round trips,
class splits, the finetune/pretrain commands, and tinyvision weights in a PyTorch twin."""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models, optim, transfer
from tinyvision.errors import InputError
from tinyvision.recipes import build_scheduler
from tinyvision.evaluate import load_checkpoint_model
from tinyvision.train import TrainConfig

sys.path.insert(0, os.path.dirname(__file__))
from cifar_fixture import write_cifar_batches  # noqa: E402


def _weights(tmp_path, name="resnet20", num_classes=10, **kwargs):
    path = str(tmp_path / f"{name}.safetensors")
    models.save_pretrained(models.create(name, num_classes=num_classes, **kwargs), path,
                           metadata={"architecture": name})
    return path


def _images(n=4, seed=0):
    return tv.tensor(np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32))


# ------------------------------------------------------------------ fine-tuning
def test_head_replaced_and_linear_probe_freezes_backbone(tmp_path):
    src = _weights(tmp_path)
    model, info = transfer.build_finetune_model(src, num_classes=5, mode="linear")
    assert model.fc.weight.shape == (5, 64) and model.num_classes == 5
    assert info["trainable"] == ["fc.weight", "fc.bias"]
    assert [k for k, _, _ in info["load"].mismatched_keys] == ["fc.weight", "fc.bias"]
    # every batch norm is frozen, so every one is held in evaluation mode by the trainer
    assert len(transfer.frozen_norms(model)) == sum(isinstance(m, tv.nn.BatchNorm2d) for m in model.modules())

    before = {k: v.copy() for k, v in model.state_dict().items()}
    groups = transfer.finetune_param_groups(model, lr=0.1, weight_decay=5e-4)
    opt = optim.SGD(groups, lr=0.1, momentum=0.9)
    loss = tv.ops.cross_entropy(model(_images()), tv.tensor(np.array([0, 1, 2, 3])))
    opt.zero_grad()
    loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        if name.startswith("fc."):
            assert p.grad is not None and not np.array_equal(p.data, before[name])
        else:
            assert p.grad is None and np.array_equal(p.data, before[name]), name


def test_partial_mode_freezes_first_stages_and_blocks(tmp_path):
    model, info = transfer.build_finetune_model(_weights(tmp_path), 5, mode="partial", freeze_stages=2)
    assert {n.split(".")[0] for n in info["trainable"]} == {"layer3", "fc"}
    norms = transfer.frozen_norms(model)
    assert model.bn1 in norms and model.layer2[0].bn1 in norms and model.layer3[0].bn1 not in norms

    vit, info = transfer.build_finetune_model(_weights(tmp_path, "vit_cifar_tiny"), 5, mode="partial")
    assert {".".join(n.split(".")[:2]) for n in info["trainable"]} == {"blocks.1", "norm.weight", "norm.bias",
                                                                       "head.weight", "head.bias"}
    assert not vit.pos_embed.requires_grad and not vit.patch_embed.proj.weight.requires_grad
    with pytest.raises(ValueError, match="has 3 stages"):
        transfer.build_finetune_model(_weights(tmp_path), 5, mode="partial", freeze_stages=4)
    with pytest.raises(ValueError, match="unknown fine-tuning mode"):
        transfer.build_finetune_model(_weights(tmp_path), 5, mode="half")


def test_backbone_lr_scale_in_groups_and_one_cycle(tmp_path):
    model, _ = transfer.build_finetune_model(_weights(tmp_path), 5, mode="full")
    groups = transfer.finetune_param_groups(model, lr=0.2, weight_decay=5e-4, backbone_lr_scale=0.1)
    lrs = {(g["name"], g["weight_decay"]): g["lr"] for g in groups}
    assert lrs == {("head", 5e-4): 0.2, ("head", 0.0): 0.2, ("backbone", 5e-4): pytest.approx(0.02),
                   ("backbone", 0.0): pytest.approx(0.02)}
    head = [p for g in groups if g["name"] == "head" for p in g["params"]]
    assert len(head) == 2 and head[0] is model.fc.weight
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    # a one-cycle schedule keeps the ratio: each group peaks at its own rate
    opt = optim.SGD(groups, lr=0.2, momentum=0.9)
    sched = build_scheduler(opt, TrainConfig(schedule="onecycle", epochs=1, lr=0.2).resolved(), 10)
    for _ in range(4):
        sched.step()
    head_lr, backbone_lr = opt.param_groups[0]["lr"], opt.param_groups[2]["lr"]
    assert backbone_lr == pytest.approx(0.1 * head_lr)


def test_unrelated_weights_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="shares no weights"):
        transfer.build_finetune_model(_weights(tmp_path, "vit_cifar_tiny"), 5, model="resnet20")
    plain = str(tmp_path / "plain.safetensors")
    models.save_pretrained(models.create("resnet20"), plain)
    with pytest.raises(ValueError, match="does not say which model"):
        transfer.build_finetune_model(plain, 5)


# ------------------------------------------------------------------ pretext tasks
def test_position_targets_are_permutations_and_shuffle_moves_patches():
    rng = np.random.default_rng(0)
    perm = transfer.random_permutations(3, 64, rng)
    assert all(sorted(row) == list(range(64)) for row in perm)
    images = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    shuffled = transfer.shuffle_patches(images, 4, perm)
    orig, moved = transfer.patchify(images, 4), transfer.patchify(shuffled, 4)
    for b in range(3):
        np.testing.assert_array_equal(moved[b], orig[b, perm[b]])
    np.testing.assert_array_equal(transfer.unpatchify(orig, 4, 3, (8, 8)), images)


def test_mae_mask_ratio_and_shapes():
    task = transfer.build_pretext("mae", "vit_cifar_tiny", mask_ratio=0.75)
    ids_keep, ids_restore, mask = task.random_masking(5, np.random.default_rng(0))
    assert ids_keep.shape == (5, 16) and task.num_visible == 16
    np.testing.assert_array_equal(mask.sum(axis=1), 48)
    for b in range(5):   # the kept patches are exactly the unmasked ones
        assert set(ids_keep[b]) == set(np.flatnonzero(mask[b] == 0))
        # ids_restore undoes the shuffle: the kept patches come first in shuffled order
        np.testing.assert_array_equal(np.argsort(ids_restore[b])[:16], ids_keep[b])
    x = _images(2)
    pred, mask = task(x, np.random.default_rng(1))
    assert pred.shape == (2, 64, 48) and mask.shape == (2, 64)
    target = task.target(x.data)
    assert target.shape == (2, 64, 48)
    np.testing.assert_allclose(target.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(target.std(axis=-1), 1, atol=1e-3)


def test_rotation_is_a_quarter_turn():
    images = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    out = transfer.rotate_images(images, np.array([1, 2]))
    np.testing.assert_array_equal(out[0], np.rot90(images[0], 1, axes=(1, 2)))
    np.testing.assert_array_equal(out[1], images[1, :, ::-1, ::-1])


@pytest.mark.parametrize("method,model", [("position", "vit_cifar_tiny"), ("mae", "vit_cifar_tiny"),
                                          ("rotation", "resnet20"), ("rotation", "vit_cifar_tiny")])
def test_pretext_loss_falls(method, model):
    task = transfer.build_pretext(method, model)
    opt = optim.Adam(task.parameters(), lr=3e-3)
    x = _images(8)
    losses = []
    for _ in range(8):
        loss, _ = task.loss(x, np.random.default_rng(0))   # the same shuffle/mask/rotation: memorise it
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.9 * losses[0] and losses[-1] == min(losses), losses


def test_pretext_needs_a_vit():
    with pytest.raises(ValueError, match="Vision Transformer"):
        transfer.build_pretext("position", "resnet20")
    with pytest.raises(ValueError, match="unknown pretext method"):
        transfer.build_pretext("jigsaw", "resnet20")


@pytest.mark.parametrize("method,model", [("mae", "vit_cifar_tiny"), ("rotation", "resnet20")])
def test_pretrained_backbone_loads_into_the_classifier(tmp_path, method, model):
    task = transfer.build_pretext(method, model)
    for p in task.parameters():   # not the initial values, so that a fresh model cannot pass
        p.data += 0.01
    path = transfer.save_backbone(task, str(tmp_path / "b.safetensors"))
    if method == "rotation":   # the live task keeps its 4-way head
        assert task.backbone.fc.weight.shape == (4, 64)
    clf, info = transfer.build_finetune_model(path, num_classes=5, mode="full")
    head = set(transfer.finetune.classifier_prefixes(clf))
    mine = clf.state_dict()
    for k, v in task.backbone.state_dict().items():
        if k.split(".")[0] not in head:
            np.testing.assert_array_equal(mine[k], v, err_msg=k)
    assert sorted(info["load"].missing_keys) == sorted(f"{h}.{w}" for h in head for w in ("bias", "weight"))


class _InMemory:
    """Images and labels held in memory, the shape of data.CIFAR10's fast path."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.targets = rng.integers(0, 10, n)
        self.classes = [str(i) for i in range(10)]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.data[i], int(self.targets[i])


def test_pretext_trainer_on_in_memory_images_needs_no_data_file(tmp_path):
    from tinyvision.transfer.trainer import PretextTrainer
    cfg = TrainConfig(model="resnet20", data=str(tmp_path / "absent"), out=str(tmp_path / "run"), epochs=1,
                      batch_size=8, prefetch=0, augment="flip")
    trainer = PretextTrainer(cfg, "rotation", progress=False, datasets=(_InMemory(16, 0), _InMemory(8, 1)))
    history = trainer.fit()
    assert len(trainer.train_loader) == 2 and len(history) == 1 and 0.0 <= history[0]["test_acc"] <= 1.0
    path = trainer.export(str(tmp_path / "b.safetensors"))
    clf, _ = transfer.build_finetune_model(path, num_classes=5)
    assert clf.fc.weight.shape == (5, 64)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_adapted_trainer_schedule_peaks_at_each_groups_lr(tmp_path, schedule):
    # A schedule built twice on one optimizer would start from the first one's rates (one-cycle
    # sets lr = max_lr / 25 when built): the peaks below would be 25x too low.
    from tinyvision.transfer.trainer import AdaptedTrainer
    cfg = TrainConfig(model="resnet20", out=str(tmp_path / "run"), epochs=2, batch_size=4, prefetch=0, lr=0.05,
                      schedule=schedule, warmup_epochs=1)
    model, _ = transfer.build_finetune_model(_weights(tmp_path), 10, mode="full")
    groups = transfer.finetune_param_groups(model, 0.05, 5e-4, backbone_lr_scale=0.1)
    trainer = AdaptedTrainer(cfg, model, _InMemory(16, 0), _InMemory(8, 1), groups, progress=False)
    peaks = np.max([trainer.scheduler.lr_at(t) for t in range(2 * len(trainer.train_loader))], axis=0)
    names = [g["name"] for g in trainer.optimizer.param_groups]
    np.testing.assert_allclose(peaks, [0.05 if n == "head" else 0.005 for n in names], rtol=0.05)   # one-cycle peaks between steps
    plain = AdaptedTrainer(cfg, tv.models.create("resnet20"), _InMemory(16, 0), _InMemory(8, 1), progress=False)
    assert max(max(plain.scheduler.lr_at(t)) for t in range(8)) == pytest.approx(0.05, rel=0.05)


def test_adapted_trainer_feeds_the_models_input_size_and_normalisation(tmp_path):
    # A backbone pretrained at another resolution (e.g. 224x224) gets resized batches normalised
    # with its own mean/std; a plain Trainer keeps CIFAR's 32x32.
    from tinyvision.train import Trainer
    from tinyvision.transfer.trainer import AdaptedTrainer
    cfg = TrainConfig(model="resnet20", out=str(tmp_path / "run"), epochs=1, batch_size=4, prefetch=0, augment="none")
    model = tv.models.create("resnet20")
    model.default_cfg = dict(model.default_cfg, input_size=(3, 40, 40), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    sets = (_InMemory(8, 0), _InMemory(4, 1))
    trainer = AdaptedTrainer(cfg, model, *sets, progress=False)
    for loader in (trainer.train_loader, trainer.test_loader):
        x, _ = next(iter(loader))
        assert x.shape[1:] == (3, 40, 40)
    x, _ = next(iter(trainer.test_loader))
    # a resize keeps a mean; normalised with (m - 0.5) / 0.25 the first image's mean is exact
    expected = (sets[1].data[:4].astype(np.float64) / 255 - 0.5).mean(axis=(1, 2)) / 0.25
    np.testing.assert_allclose(x.numpy().mean(axis=(2, 3)), expected, atol=2e-2)
    plain = Trainer(cfg, progress=False, model=tv.models.create("resnet20"), datasets=sets)
    assert next(iter(plain.train_loader))[0].shape[1:] == (3, 32, 32)
    # progressive resizing crops the images a resizing trainer would scale: refused, by name
    with pytest.raises(ValueError, match="progressive .*AdaptedTrainer does not follow it"):
        AdaptedTrainer(dataclasses.replace(cfg, epochs=2, progressive=[[24, 1]]), model, *sets, progress=False)


# ------------------------------------------------------------------ splits
def test_class_split_relabels():
    class Fake:
        data = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 3), np.uint8)
        targets = np.array([0, 5, 6, 9, 1, 5, 7, 8, 9, 2])
        classes = [f"c{i}" for i in range(10)]
    split = transfer.ClassSplit(Fake(), transfer.parse_classes("5-9"))
    np.testing.assert_array_equal(split.targets, [0, 1, 4, 0, 2, 3, 4])
    np.testing.assert_array_equal(split.data[:, 0, 0, 0], [1, 2, 3, 5, 6, 7, 8])
    assert split.classes == ["c5", "c6", "c7", "c8", "c9"] and split[2][1] == 4
    assert transfer.parse_classes("0,2-3") == [0, 2, 3]
    for bad in ("5-12", "1,1", "x"):
        with pytest.raises(ValueError):
            transfer.parse_classes(bad)
    idx = transfer.label_fraction_indices(np.repeat(np.arange(5), 100), 0.1, seed=0)
    np.testing.assert_array_equal(np.bincount(np.repeat(np.arange(5), 100)[idx]), [10] * 5)


def test_resize_transform():
    x = np.full((2, 3, 32, 32), 0.5, np.float32)
    out = transfer.Resize(224)(x)
    assert out.shape == (2, 3, 224, 224)
    np.testing.assert_allclose(out, 0.5, atol=1e-6)


# ------------------------------------------------------------------ command line
def _run(argv):
    parser = argparse.ArgumentParser()
    transfer.cli.add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.fn(args)


def test_cli_pretrain_then_finetune(tmp_path, capsys):
    import tinyvision.transfer.cli  # noqa: F401
    root = os.path.dirname(write_cifar_batches(str(tmp_path), n_train=100, n_test=50))
    pre = str(tmp_path / "pre")
    common = ["--data", root, "--epochs", "1", "--batch-size", "10", "--no-progress"]
    assert _run(["pretrain", "--method", "position", "--model", "vit_cifar_tiny", "--out", pre] + common) == 0
    backbone = os.path.join(pre, "backbone.safetensors")
    assert os.path.exists(backbone) and os.path.exists(os.path.join(pre, "metrics.csv"))
    ft = str(tmp_path / "ft")
    assert _run(["finetune", backbone, "--num-classes", "5", "--classes", "5-9", "--mode", "partial",
                 "--out", ft] + common) == 0
    assert os.path.exists(os.path.join(ft, "last.tvz")) and os.path.exists(os.path.join(ft, "finetune.json"))
    model, cfg, classes = load_checkpoint_model(os.path.join(ft, "last.tvz"))
    assert classes == ["dog", "frog", "horse", "ship", "truck"] and model.head.weight.shape == (5, 64)
    # a pretext run's checkpoint works too (backbone. prefix stripped), and a fine-tune
    # checkpoint can itself be fine-tuned again, linear probe on all ten classes
    assert _run(["finetune", os.path.join(pre, "last.tvz"), "--mode", "linear", "--out", str(tmp_path / "ft2")]
                + common) == 0
    assert _run(["finetune", os.path.join(ft, "last.tvz"), "--label-fraction", "0.5", "--out", str(tmp_path / "ft3")]
                + common) == 0
    with pytest.raises(ValueError, match="padding"):   # crops would leak border positions
        _run(["pretrain", "--method", "position", "--model", "vit_cifar_tiny", "--augment", "crop_flip",
              "--out", str(tmp_path / "crops")] + common)
    assert not os.path.exists(tmp_path / "crops")     # a refused start leaves no folder
    with pytest.raises(InputError, match="--num-classes 3"):
        _run(["finetune", backbone, "--num-classes", "3", "--classes", "5-9", "--out", str(tmp_path / "x")] + common)


def test_cli_pretrain_and_finetune_never_write_into_another_run(tmp_path, monkeypatch, capsys):
    """Without --out each run gets a fresh runs/TASK[-N]; an --out holding a run is refused
    unless --overwrite; a start that fails (an unreadable checkpoint) leaves no folder behind."""
    from tinyvision.errors import CheckpointError, RunDirError
    root = os.path.dirname(write_cifar_batches(str(tmp_path), n_train=40, n_test=20))
    monkeypatch.chdir(tmp_path)
    common = ["--data", root, "--epochs", "1", "--batch-size", "10", "--no-progress"]
    pretrain = ["pretrain", "--method", "rotation", "--model", "resnet20"] + common
    assert _run(pretrain) == 0 and _run(pretrain) == 0
    assert sorted(os.listdir("runs")) == ["pretrain_rotation_resnet20", "pretrain_rotation_resnet20-2"]
    first = os.path.join("runs", "pretrain_rotation_resnet20")
    weights = open(os.path.join(first, "backbone.safetensors"), "rb").read()
    with pytest.raises(RunDirError, match="holds a run"):
        _run(pretrain + ["--out", first])
    assert open(os.path.join(first, "backbone.safetensors"), "rb").read() == weights
    assert _run(pretrain + ["--out", first, "--overwrite"]) == 0
    bad = tmp_path / "bad.tvz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        _run(["finetune", str(bad)] + common)
    assert not any(name.startswith("finetune") for name in os.listdir("runs"))
    capsys.readouterr()


# ------------------------------------------------------------------ the experiment runner
def test_transfer_experiment_runs_every_method_and_judges_the_claims(tmp_path):
    from tinyvision.transfer.experiment import ModelPlan, markdown_table, run_experiment
    root = os.path.dirname(write_cifar_batches(str(tmp_path), n_train=300, n_test=100))
    recipe = dict(optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine", warmup_epochs=0, batch_size=5,
                  augment="flip")
    plan = ModelPlan("resnet20", recipe, ("rotation",), pretrain_per_class=4, pretrain_epochs=1,
                     finetune_epochs={0.2: 2, 1.0: 1}, ssl_per_class=2)
    out = str(tmp_path / "exp")
    results = run_experiment([plan], root, out, test_per_class=4, log=lambda s: None)
    pre = results["pretraining"]
    assert pre["resnet20/supervised"]["images"] == 5 * 4 and pre["resnet20/ssl_rotation"]["images"] == 10 * 2
    runs = {(r["label_fraction"], r["method"]): r for r in results["runs"]}
    assert set(runs) == {(f, m) for f in (0.2, 1.0) for m in ("scratch", "supervised", "ssl_rotation")}
    target = transfer.finetune_datasets(root, [5, 6, 7, 8, 9], None, 1.0, None, 0)[0]
    assert runs[(1.0, "scratch")]["train_images"] == len(target)
    assert runs[(0.2, "scratch")]["train_images"] < len(target)
    assert runs[(0.2, "supervised")]["epochs"] == 2 and runs[(1.0, "ssl_rotation")]["epochs"] == 1
    assert set(results["verdicts"]) >= {"reuse of data", "better performance", "less overfitting", "faster training"}
    assert all(v.split(":")[0] in ("confirmed", "refuted", "inconclusive")
               for k, v in results["verdicts"].items() if k != "evidence")
    assert len(results["verdicts"]["evidence"]) == 4   # two transfer methods at two fractions
    with open(os.path.join(out, "results.json")) as f:
        assert "verdicts" in json.load(f)
    assert markdown_table(results).count("\n") == 2 + len(runs) - 1


def test_verdicts_on_hand_made_runs():
    from tinyvision.transfer.experiment import verdicts

    def run(method, fraction, best, gap, reach):
        return dict(model="m", label_fraction=fraction, method=method, best_acc=best, gap=gap,
                    epochs_to_threshold=reach)
    runs = [run("scratch", 0.1, 0.60, 0.20, 5), run("supervised", 0.1, 0.70, 0.05, 2),
            run("scratch", 1.0, 0.80, 0.10, 4), run("supervised", 1.0, 0.85, 0.02, 1)]
    v = verdicts(runs)
    assert [v[k].split(":")[0] for k in ("better performance", "less overfitting", "faster training")] == \
        ["confirmed"] * 3
    runs[1].update(best_acc=0.50, gap=0.30, epochs_to_threshold=None)
    runs[3].update(best_acc=0.70, gap=0.20, epochs_to_threshold=None)
    v = verdicts(runs)
    assert [v[k].split(":")[0] for k in ("better performance", "less overfitting", "faster training")] == \
        ["refuted"] * 3
    runs[3].update(best_acc=0.81)   # within the 2-point margin: one worse, one even
    assert verdicts(runs)["better performance"].startswith("inconclusive")


# ------------------------------------------------------------------ the other direction: PyTorch
def _torch_names(name, model):
    """tinyvision names -> benchmarks/torch_reference.py names."""
    if model == "resnet20":
        if name.startswith("layer"):
            stage, block, rest = name.split(".", 2)
            return f"layers.{(int(stage[5:]) - 1) * 3 + int(block)}.{rest}"
        return name
    return (name.replace("patch_embed.proj.", "proj.").replace(".attn.qkv.", ".qkv.")
            .replace(".attn.proj.", ".proj.").replace(".mlp.fc", ".fc"))


@pytest.mark.parametrize("model", ["resnet20", "vit_cifar_tiny"])
def test_tinyvision_weights_in_a_pytorch_twin(tmp_path, model):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    import torch_reference

    net = models.create(model, num_classes=10).eval()
    for name, b in net.named_buffers():   # non-trivial batch norm statistics
        if name.endswith("running_mean") or name.endswith("running_var"):
            b.data[...] = np.random.default_rng(0).uniform(0.5, 1.5, b.shape)
    path = str(tmp_path / "w.safetensors")
    models.save_pretrained(net, path)
    twin = (torch_reference.CifarResNet(20) if model == "resnet20" else torch_reference.ViT(64, 2, 2, 2)).eval()
    for m in twin.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6   # timm's (and tinyvision's) ViT norms
    state = {_torch_names(k, model): v for k, v in load_file(path).items()}
    twin.load_state_dict(state, strict=True)
    x = _images(3)
    with tv.no_grad():
        mine = net(x).numpy()
    theirs = twin(torch.from_numpy(x.numpy())).detach().numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)
