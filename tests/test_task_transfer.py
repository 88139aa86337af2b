"""Classification models as the backbones of a detector and a segmenter (article section 6
with transfer): ResNet-20 with its maps at strides (1, 2, 4) and the CIFAR ViT at 64x64 (its
position table resampled), weights loaded from a training checkpoint without the classifier,
a lower learning rate for the pretrained part, and clear errors."""
import os

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models
from tinyvision.models.vit import resample_pos_embed
from tinyvision.tasks import detection as D
from tinyvision.tasks import segmentation as S
from tinyvision.tasks.backbones import ViTBackbone, build_backbone
from tinyvision.tasks.loop import TaskConfig, build_model, fit
from tinyvision.transfer.finetune import finetune_param_groups

from cifar_fixture import write_cifar_batches
from scene_fixture import losses_of_steps, run_task_cli, tiny_scenes


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_resnet20_backbone_shapes_and_training(task):
    ds = tiny_scenes(4)
    module = D if task == "detect" else S
    model = module.build_model(ds.num_classes + (task == "segment"), "resnet20", model="resnet20")
    assert model.backbone.strides == (1, 2, 4) and model.backbone.channels == (16, 32, 64)
    x, targets = ds.batch(np.arange(4))
    out = model(tv.tensor(x))
    if task == "detect":
        assert out[0].shape == (4, 3, 16, 16) and out[1].shape == (4, 4, 16, 16)
        assert model.lateral is None     # the stride-4 map is ResNet-20's last stage itself
    else:
        assert out.shape == (4, 4, 64, 64)
    losses = losses_of_steps(model, x, targets, steps=6, lr=3e-3)
    assert losses[-1] < 0.8 * losses[0], losses


def test_pretrained_checkpoint_initialises_the_backbone(tmp_path):
    tv.manual_seed(1)
    classifier = models.create("resnet20", num_classes=10)
    for name, b in classifier.named_buffers():
        if name.endswith("running_mean"):
            b.data[...] = np.random.default_rng(0).standard_normal(b.shape)
    path = str(tmp_path / "best.tvz")
    tv.save({"model": classifier.state_dict(), "config": {"model": "resnet20"}}, path)

    model = build_model(TaskConfig(task="segment", backbone="resnet20"), num_classes=3)
    result = model.backbone.load_pretrained(path)
    assert result.unexpected_keys == ["fc.weight", "fc.bias"] and not result.missing_keys
    mine, theirs = model.backbone.net.state_dict(), classifier.state_dict()
    for key in mine:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)

    # fit loads it too, and trains: the first conv has moved away from the checkpoint's
    ds = tiny_scenes(4)
    cfg = TaskConfig(task="segment", backbone="resnet20", epochs=1, batch_size=2, out=str(tmp_path / "run"),
                     pretrained=path, backbone_lr_scale=0.1)
    trained, history = fit(cfg, ds, tiny_scenes(2, seed=1), progress=False, log=lambda line: None)
    w0, w1 = theirs["conv1.weight"], trained.backbone.net.conv1.weight.numpy()
    assert 0 < np.abs(w1 - w0).max() < 0.1 and "miou" in history[-1]


def test_vit_backbone_from_a_cifar_checkpoint_at_twice_the_size(tmp_path):
    tv.manual_seed(2)
    classifier = models.create("vit_cifar_tiny", num_classes=10)        # 32x32 images, patch 4: 8x8 grid
    path = str(tmp_path / "vit.tvz")
    tv.save({"model": classifier.state_dict(), "config": {"model": "vit_cifar_tiny"}}, path)
    backbone = ViTBackbone(img_size=64, model="vit_cifar_tiny")         # 16x16 grid
    result = backbone.load_pretrained(path)
    assert sorted(result.unexpected_keys) == ["head.bias", "head.weight"]
    assert not result.missing_keys and not result.mismatched_keys
    theirs, mine = classifier.state_dict(), backbone.vit.state_dict()
    np.testing.assert_allclose(mine["pos_embed"], resample_pos_embed(theirs["pos_embed"], (16, 16)), rtol=1e-6)
    for key in theirs:
        if key not in ("pos_embed", "head.weight", "head.bias"):
            np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)
    feats = backbone(tv.tensor(np.zeros((2, 3, 64, 64), np.float32)))
    assert len(feats) == 1 and feats[0].shape == (2, 64, 16, 16) and backbone.strides == (4,)


def test_vit_cifar_small_task_models():
    assert build_backbone("vit_cifar_small").channels == (192,)      # the named model, not the small default
    det = build_model(TaskConfig(task="detect", backbone="vit_cifar_small"), num_classes=3)
    assert det.backbone.channels == (192,) and det.backbone.strides == (4,)
    heat, reg = det(tv.tensor(np.zeros((1, 3, 64, 64), np.float32)))
    assert heat.shape == (1, 3, 16, 16) and reg.shape == (1, 4, 16, 16)
    seg = build_model(TaskConfig(task="segment", backbone="vit_cifar_small"), num_classes=3)
    assert isinstance(seg.decoder, S.SETRDecoder)
    with pytest.raises(ValueError, match="not both"):
        ViTBackbone(model="vit_cifar_small", depth=2)
    with pytest.raises(ValueError, match="not a registered ViT"):
        ViTBackbone(model="resnet20")


def test_backbone_learning_rate_scale():
    model = build_model(TaskConfig(task="detect", backbone="resnet20"), num_classes=3)
    groups = finetune_param_groups(model, 1e-3, 1e-4, 0.1, backbone=model.backbone)
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    for g in groups:
        inside = {id(p) in backbone_ids for p in g["params"]}
        assert inside == {g["name"] == "backbone"}
        assert g["lr"] == pytest.approx(1e-4 if g["name"] == "backbone" else 1e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_pretrained_needs_a_resnet20_backbone(tmp_path):
    cfg = TaskConfig(task="detect", backbone="resnet", epochs=1, out=str(tmp_path / "run"),
                     pretrained=str(tmp_path / "none.tvz"), model_kwargs=dict(widths=(8, 16, 16)))
    with pytest.raises(ValueError, match="resnet20"):
        fit(cfg, tiny_scenes(2), tiny_scenes(2, seed=1), progress=False)


def test_unet_decoder_needs_three_doubling_strides():
    with pytest.raises(ValueError, match="strides"):
        S.UNetDecoder((16, 32, 64), 3, strides=(1, 2, 8))
    with pytest.raises(ValueError, match="three feature maps"):    # an ImageNet ResNet has four
        S.Segmenter(3, "resnet20", model="resnet18")


def test_cli_trains_a_detector_from_a_classifier_checkpoint(tmp_path, capsys):
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    ckpt = str(tmp_path / "best.tvz")
    tv.save({"model": models.create("resnet20", num_classes=10).state_dict()}, ckpt)
    out = tmp_path / "run"
    assert run_task_cli(["detect", "train", "--backbone", "resnet20", "--pretrained", ckpt, "--backbone-lr-scale",
                         "0.1", "--data", str(root), "--epochs", "1", "--train-scenes", "4", "--test-scenes", "2",
                         "--batch-size", "2", "--out", str(out), "--no-progress"]) == 0
    state = tv.load(str(out / "last.tvz"))
    assert state["config"]["pretrained"] == ckpt and state["config"]["backbone_lr_scale"] == 0.1
    os.remove(ckpt)    # the task checkpoint holds the weights: evaluation needs no classifier file
    assert run_task_cli(["detect", "eval", str(out / "last.tvz"), "--data", str(root)]) == 0
    assert '"ap50"' in capsys.readouterr().out


def test_cli_task_runs_never_overwrite_and_allow_missing_loads_what_fits(tmp_path, monkeypatch, capsys):
    """detect/segment train: a fresh runs/TASK_BACKBONE[-N] without --out, an --out holding a
    run refused unless --overwrite; a --pretrained file of other shapes refused, naming the
    layer, unless --allow-missing."""
    from tinyvision.errors import CheckpointError, RunDirError
    root = tmp_path / "cifar"
    write_cifar_batches(str(root), n_train=50, n_test=20)
    monkeypatch.chdir(tmp_path)
    state = models.create("resnet20", num_classes=10).state_dict()
    state["layer3.2.conv2.weight"] = np.zeros((64, 32, 3, 3), np.float32)
    ckpt = str(tmp_path / "odd.tvz")
    tv.save({"model": state}, ckpt)
    common = ["--data", str(root), "--epochs", "1", "--train-scenes", "4", "--test-scenes", "2", "--batch-size", "2",
              "--no-progress", "--backbone", "resnet20"]
    with pytest.raises(CheckpointError, match="layer3.2.conv2.weight.*--allow-missing"):
        run_task_cli(["detect", "train", "--pretrained", ckpt] + common)
    assert not os.path.exists("runs/detect_resnet20")            # refused before a folder was made
    assert run_task_cli(["detect", "train", "--pretrained", ckpt, "--allow-missing"] + common) == 0
    assert run_task_cli(["detect", "train"] + common) == 0
    assert sorted(os.listdir("runs")) == ["detect_resnet20", "detect_resnet20-2"]
    first = os.path.join("runs", "detect_resnet20", "last.tvz")
    before = open(first, "rb").read()
    with pytest.raises(RunDirError, match="holds a run"):
        run_task_cli(["detect", "train", "--out", "runs/detect_resnet20"] + common)
    assert open(first, "rb").read() == before
    assert run_task_cli(["detect", "train", "--out", "runs/detect_resnet20", "--overwrite"] + common) == 0
    assert open(first, "rb").read() != before
    capsys.readouterr()
