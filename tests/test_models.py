"""Tests of tinyvision.models: parameter counts against torchvision/timm, shapes, forward and
backward of every registered model, float64 gradient checks of the blocks, train/eval
behaviour, torchvision/timm parameter names, safetensors round trips, fine-tuning helpers
and the summary table."""
import os
import sys

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models
from tinyvision.errors import CheckpointError
from tinyvision.models import BasicBlock, Block, DropPath, PadShortcut, PatchEmbed
from tinyvision.models.resnet import _cifar_resnet

from test_nn import gradcheck_module

safetensors = pytest.importorskip("safetensors")


def fresh(name, **kwargs):
    tv.manual_seed(0)
    return models.create(name, **kwargs)


# ---------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name, kwargs, count", [
    ("resnet18", dict(num_classes=1000), 11_689_512),      # torchvision's numbers
    ("resnet34", dict(num_classes=1000), 21_797_672),
    ("resnet50", dict(num_classes=1000), 25_557_032),
    ("vit_base_patch16_224", dict(num_classes=1000), 86_567_656),   # timm's
    ("vit_tiny_patch16_224", dict(num_classes=1000), 5_717_416),
    ("resnet20", {}, 269_722),                              # He et al., option A
    ("resnet56", {}, 853_018),
    ("resnet110", {}, 1_727_962),
    ("plain20", {}, 269_722),                               # option A adds no parameters
    ("resnet20", dict(shortcut="B"), 272_474),
])
def test_parameter_counts(name, kwargs, count):
    assert models.create(name, **kwargs).num_parameters() == count


def test_cifar_vit_sizes():
    assert 3.6e6 < models.vit_lite_7_4().num_parameters() < 3.8e6
    small = models.vit_cifar_small()
    assert (small.embed_dim, len(small.blocks), small.blocks[0].attn.num_heads) == (192, 6, 3)
    assert small.patch_embed.patch_size == (4, 4) and small.blocks[0].mlp.fc1.out_features == 384
    # a fixed sine-cosine table is a buffer: in the state dict, not among the parameters
    sincos = models.vit_cifar_small(pos_embed="sincos")
    assert sincos.num_parameters() == small.num_parameters() - 65 * 192
    assert "pos_embed" in sincos.state_dict()


# ---------------------------------------------------------------- every model runs
def _small_input_kwargs(name):
    """Run the 224x224 ViTs at 32x32 (2x2 patches) to keep the test fast; ResNets take any size."""
    return dict(img_size=32) if name.startswith("vit_") and name.endswith("_224") else {}


@pytest.mark.parametrize("name", models.list_models())
def test_every_model_forward_backward(name):
    model = fresh(name, num_classes=7, **_small_input_kwargs(name))
    C, H, W = model.default_cfg["input_size"]
    x = tv.randn(2, C, H if H <= 32 else 32, W if W <= 32 else 32)
    y = model(x)
    assert y.shape == (2, 7) and np.isfinite(y.numpy()).all()
    y.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"


def test_feature_shapes():
    x = tv.randn(2, 3, 32, 32)
    assert models.resnet20().forward_features(x).shape == (2, 64, 8, 8)
    assert models.resnet18(small_input=True).forward_features(x).shape == (2, 512, 4, 4)
    features = models.resnet50(num_classes=0)
    assert features.forward_features(x).shape == (2, 2048, 1, 1) and features(x).shape == (2, 2048)
    vit = models.vit_cifar_tiny()
    tokens = vit.forward_features(x)
    assert tokens.shape == (2, 65, 64)
    assert vit.forward_head(tokens, pre_logits=True).shape == (2, 64)
    assert models.vit_cifar_tiny(global_pool="avg")(x).shape == (2, 10)


# ---------------------------------------------------------------- blocks: formulas and gradients
def test_pad_shortcut_is_subsampling_and_zero_channels():
    x = tv.randn(2, 4, 6, 6)
    y = PadShortcut(4, 8, 2)(x).numpy()
    assert y.shape == (2, 8, 3, 3)
    np.testing.assert_array_equal(y[:, 2:6], x.numpy()[:, :, ::2, ::2])
    assert not y[:, :2].any() and not y[:, 6:].any()
    with pytest.raises(ValueError, match="shortcut='B'"):
        PadShortcut(8, 4, 1)


def test_residual_block_is_relu_of_branch_plus_input():
    tv.manual_seed(0)
    block = BasicBlock(4, 4).eval()
    x = tv.randn(2, 4, 5, 5)
    expected = np.maximum(block.residual(x).numpy() + x.numpy(), 0)
    np.testing.assert_allclose(block(x).numpy(), expected, rtol=1e-6)
    plain = BasicBlock(4, 4, plain=True).eval()
    assert plain.downsample is None
    np.testing.assert_allclose(plain(x).numpy(), np.maximum(plain.residual(x).numpy(), 0), rtol=1e-6)


def test_zero_init_residual_starts_blocks_as_identity():
    model = models.resnet20(zero_init_residual=True).eval()
    block = model.layer1[1]
    x = tv.randn(2, 16, 8, 8).relu()
    np.testing.assert_allclose(block(x).numpy(), x.numpy(), atol=1e-6)


@pytest.mark.parametrize("shortcut, stride", [("A", 2), ("B", 2), ("B", 1)])
def test_basic_block_gradcheck(shortcut, stride):
    tv.manual_seed(0)
    block = BasicBlock(2, 4 if stride == 2 else 2, stride=stride, shortcut=shortcut)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    gradcheck_module(block, x)


def test_bottleneck_gradcheck():
    tv.manual_seed(0)
    gradcheck_module(models.Bottleneck(4, 1, stride=2), np.random.default_rng(1).standard_normal((2, 4, 4, 4)))


def test_vit_block_gradcheck():
    tv.manual_seed(0)
    block = Block(8, num_heads=2, mlp_ratio=2.0)
    for p in block.parameters():  # timm's init leaves biases at 0 and LayerNorms at 1/0: perturb them
        p.data += 0.1 * np.random.default_rng(2).standard_normal(p.shape).astype(p.dtype)
    gradcheck_module(block, np.random.default_rng(3).standard_normal((2, 3, 8)))


def test_patch_embed_shapes_and_errors():
    pe = PatchEmbed(img_size=8, patch_size=4, in_chans=3, embed_dim=5)
    x = tv.randn(2, 3, 8, 8)
    y = pe(x)
    assert y.shape == (2, 4, 5)
    # token (i, j) of the grid is the projection of patch (i, j): row-major order
    patch = x.numpy()[:, :, 4:8, 0:4]
    expected = np.einsum("bchw,dchw->bd", patch, pe.proj.weight.numpy()) + pe.proj.bias.numpy()
    np.testing.assert_allclose(y.numpy()[:, 2], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="img_size=\\(12, 12\\)"):
        pe(tv.randn(2, 3, 12, 12))
    with pytest.raises(ValueError, match="not divisible"):
        PatchEmbed(img_size=30, patch_size=4)


# ---------------------------------------------------------------- train / eval
def test_batch_norm_running_stats_update_only_in_training():
    model = fresh("resnet20")
    x = tv.randn(4, 3, 32, 32) * 2 + 1
    before = model.bn1.running_mean.numpy().copy()
    model.eval()
    first = model(x).numpy()
    np.testing.assert_array_equal(model.bn1.running_mean.numpy(), before)
    np.testing.assert_array_equal(model(x).numpy(), first)
    model.train()
    model(x)
    assert not np.allclose(model.bn1.running_mean.numpy(), before)
    assert int(model.bn1.num_batches_tracked.numpy()) == 1


def test_drop_path_is_per_sample_and_identity_in_eval():
    tv.manual_seed(0)
    dp = DropPath(0.5)
    y = dp(tv.ones(2000, 3, 2)).numpy()
    per_sample = y.reshape(2000, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()        # one draw per sample
    assert abs(per_sample.mean() - 1.0) < 0.1             # E[y] = x
    dp.eval()
    np.testing.assert_array_equal(dp(tv.ones(4, 3)).numpy(), np.ones((4, 3)))


def test_vit_stochastic_in_training_deterministic_in_eval():
    model = fresh("vit_cifar_tiny", drop_path_rate=0.5, drop_rate=0.1)
    assert [type(b.drop_path).__name__ for b in model.blocks] == ["Identity", "DropPath"]
    x = tv.randn(4, 3, 32, 32)
    assert not np.allclose(model(x).numpy(), model(x).numpy())
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())


def test_attention_maps():
    model = fresh("vit_cifar_tiny").eval()
    maps = model.get_attention_maps(tv.randn(2, 3, 32, 32))
    assert len(maps) == 2
    for a in maps:
        assert a.shape == (2, 2, 65, 65)
        np.testing.assert_allclose(a.numpy().sum(-1), 1.0, rtol=1e-5)
        assert (a.numpy() >= 0).all()


# ---------------------------------------------------------------- names
def test_torchvision_resnet_names():
    names = list(models.resnet18().state_dict())
    for key in ["conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.num_batches_tracked",
                "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                "layer4.1.bn2.bias", "fc.weight", "fc.bias"]:
        assert key in names
    assert "layer4.2.conv3.weight" in models.resnet50().state_dict()
    assert not [k for k in models.resnet20().state_dict() if "downsample" in k]   # option A


def test_timm_vit_names():
    names = list(models.vit_cifar_tiny().state_dict())
    assert names[:4] == ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    for key in ["blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
                "blocks.0.attn.proj.weight", "blocks.0.norm2.bias", "blocks.0.mlp.fc1.weight",
                "blocks.1.mlp.fc2.bias", "norm.weight", "head.weight", "head.bias"]:
        assert key in names
    model = models.vit_cifar_tiny()
    assert model.cls_token.shape == (1, 1, 64) and model.pos_embed.shape == (1, 65, 64)


# ---------------------------------------------------------------- registry
def test_registry():
    assert {"resnet20", "resnet110", "plain56", "resnet50", "vit_cifar_small", "vit_base_patch16_224"} \
        <= set(models.list_models())
    assert models.list_models("plain*") == ["plain110", "plain20", "plain32", "plain44", "plain56"]
    model = models.create("resnet20")
    assert model.default_cfg["recipe"] == "resnet_sgd" and model.default_cfg["num_classes"] == 10
    assert model.default_cfg["mean"] == (0.4914, 0.4822, 0.4465)
    assert models.get_default_cfg("vit_cifar_small")["recipe"] == "vit_adamw"
    assert models.get_default_cfg("vit_base_patch16_224")["input_size"] == (3, 224, 224)
    assert models.get_default_cfg("resnet18")["mean"] == (0.485, 0.456, 0.406)
    assert models.get_default_cfg("resnet18", small_input=True)["input_size"] == (3, 32, 32)
    assert models.resnet18(small_input=True).default_cfg["input_size"] == (3, 32, 32)
    with pytest.raises(KeyError, match="did you mean .*resnet20"):
        models.create("resnet21")
    with pytest.raises(ValueError, match="6n \\+ 2"):
        _cifar_resnet(21, 10, False)
    with pytest.raises(ValueError, match="shortcut"):
        models.create("resnet20", shortcut="C")


# ---------------------------------------------------------------- pretrained weights
def test_save_load_round_trip(tmp_path):
    src = fresh("resnet20")
    src.train()(tv.randn(4, 3, 32, 32))          # non-trivial running statistics
    path = tmp_path / "resnet20.safetensors"
    models.save_pretrained(src, path)
    assert os.listdir(tmp_path) == ["resnet20.safetensors"]   # no temporary left behind
    stored = safetensors.numpy.load_file(str(path))
    assert stored["conv1.weight"].dtype == np.float32 and stored["bn1.num_batches_tracked"].dtype == np.int64
    dst = models.create("resnet20")
    result = models.load_pretrained(dst, path)
    assert result == ([], [], [])
    x = tv.randn(2, 3, 32, 32)
    np.testing.assert_array_equal(dst.eval()(x).numpy(), src.eval()(x).numpy())


def test_load_errors_and_non_strict(tmp_path):
    path = tmp_path / "vit.safetensors"
    models.save_pretrained(fresh("vit_cifar_tiny", num_classes=1000), path)
    dst = fresh("vit_cifar_tiny", num_classes=10)
    with pytest.raises(CheckpointError, match=r"head.weight: file has \(1000, 64\), model has \(10, 64\)"):
        models.load_pretrained(dst, path)
    result = models.load_pretrained(dst, path, strict=False)
    assert [k for k, _, _ in result.mismatched_keys] == ["head.weight", "head.bias"]
    src = safetensors.numpy.load_file(str(path))
    np.testing.assert_array_equal(dst.blocks[0].attn.qkv.weight.numpy(), src["blocks.0.attn.qkv.weight"])
    deeper = fresh("vit_cifar_tiny", depth=3, num_classes=1000)
    with pytest.raises(CheckpointError, match="missing from the file .*blocks.2.norm1.weight"):
        models.load_pretrained(deeper, path)
    with pytest.raises(CheckpointError, match="unexpected in the file .*blocks.1.norm1.weight"):
        models.load_pretrained(fresh("vit_cifar_tiny", depth=1, num_classes=1000), path)


def test_pos_embed_is_resampled_to_a_new_grid(tmp_path):
    path = tmp_path / "vit.safetensors"
    src = fresh("vit_cifar_tiny")
    models.save_pretrained(src, path)
    big = fresh("vit_cifar_tiny", img_size=48)                       # 12x12 patches instead of 8x8
    models.load_pretrained(big, path)
    assert big.pos_embed.shape == (1, 145, 64)
    np.testing.assert_array_equal(big.pos_embed.numpy()[:, 0], src.pos_embed.numpy()[:, 0])
    # a constant grid stays constant under bilinear resampling
    grid = np.full((1, 1 + 64, 3), 2.0)
    np.testing.assert_allclose(models.resample_pos_embed(grid, (5, 7))[:, 1:], 2.0)
    with pytest.raises(CheckpointError, match="pos_embed"):
        models.load_pretrained(fresh("vit_cifar_tiny", img_size=48), path, interpolate_pos_embed=False)


def test_torchvision_vit_names_are_mapped(tmp_path):
    src = fresh("vit_cifar_tiny")
    to_torchvision = [("cls_token", "class_token"), ("patch_embed.proj.", "conv_proj."),
                      ("pos_embed", "encoder.pos_embedding"), ("norm1.", "ln_1."), ("norm2.", "ln_2."),
                      ("attn.qkv.weight", "self_attention.in_proj_weight"),
                      ("attn.qkv.bias", "self_attention.in_proj_bias"),
                      ("attn.proj.", "self_attention.out_proj."), ("mlp.fc1.", "mlp.0."),
                      ("mlp.fc2.", "mlp.3."), ("head.", "heads.head.")]
    state = {}
    for key, value in src.state_dict().items():
        for old, new in to_torchvision:
            key = key.replace(old, new)
        if key.startswith("blocks."):
            key = "encoder.layers.encoder_layer_" + key[len("blocks."):]
        if key.startswith("norm."):
            key = "encoder.ln." + key[len("norm."):]
        state[key] = value
    assert "encoder.layers.encoder_layer_1.self_attention.in_proj_weight" in state
    path = tmp_path / "torchvision_vit.safetensors"
    safetensors.numpy.save_file(state, str(path))
    dst = fresh("vit_cifar_tiny")
    dst.cls_token.data[...] = 0
    models.load_pretrained(dst, path)
    x = tv.randn(2, 3, 32, 32)
    np.testing.assert_array_equal(dst.eval()(x).numpy(), src.eval()(x).numpy())


def test_map_names_and_old_checkpoints_without_counters(tmp_path):
    src = fresh("resnet20")
    state = {"backbone." + k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "prefixed.safetensors"
    safetensors.numpy.save_file(state, str(path))
    dst = fresh("resnet20")
    models.load_pretrained(dst, path, map_names=lambda k: k[len("backbone."):])
    np.testing.assert_array_equal(dst.fc.weight.numpy(), src.fc.weight.numpy())


def test_missing_safetensors_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        models.save_pretrained(models.vit_cifar_tiny(), tmp_path / "x.safetensors")


# ---------------------------------------------------------------- fine-tuning
def test_reset_classifier_and_freeze():
    model = fresh("resnet20")
    model.reset_classifier(5)
    assert model.get_classifier() is model.fc and model.fc.out_features == 5
    assert model.default_cfg["num_classes"] == 5
    assert models.freeze(model) == ["fc.weight", "fc.bias"]
    model(tv.randn(2, 3, 32, 32)).sum().backward()
    assert model.fc.weight.grad is not None
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))
    assert model.num_parameters(trainable_only=True) == 64 * 5 + 5
    models.unfreeze(model, only=("layer3",))
    assert model.layer3[0].conv1.weight.requires_grad and not model.conv1.weight.requires_grad
    models.unfreeze(model)
    assert model.num_parameters(trainable_only=True) == model.num_parameters()
    with pytest.raises(ValueError, match="name no module"):
        models.freeze(model, except_=("classifier",))

    vit = fresh("vit_cifar_tiny")
    vit.reset_classifier(3, global_pool="avg")
    assert vit(tv.randn(2, 3, 32, 32)).shape == (2, 3)
    assert models.freeze(vit, except_=("head", "blocks.1"))[-2:] == ["head.weight", "head.bias"]
    assert not vit.cls_token.requires_grad and vit.blocks[1].attn.qkv.weight.requires_grad


# ---------------------------------------------------------------- summary
def test_summary_resnet20(capsys):
    model = fresh("resnet20")
    s = tv.summary(model, (1, 3, 32, 32))
    assert s.total_params == model.num_parameters() == 269_722
    # conv MACs: 3x3 convs at 32x32 (16 ch), 16x16 (32 ch), 8x8 (64 ch) + the 640 of fc
    assert s.total_macs == 40_551_040
    out = capsys.readouterr().out
    assert "layer2.0 (BasicBlock)" in out and "Total mult-adds (M): 40.55" in out
    assert tv.summary(model, (2, 3, 32, 32), verbose=False).total_macs == 2 * 40_551_040
    assert model.training and int(model.bn1.num_batches_tracked.numpy()) == 0   # state untouched


def test_summary_vit_counts_attention_matmuls():
    model = fresh("vit_cifar_tiny")
    s = tv.summary(model, (1, 3, 32, 32), depth=None, verbose=False)
    N, D, depth, hidden = 65, 64, 2, 128
    expected = (64 * D * 3 * 16                            # patch embedding
                + depth * (N * D * 3 * D + 2 * N * N * D   # qkv, Q K^T and A V
                           + N * D * D + 2 * N * D * hidden)  # proj, mlp
                + D * 10)                                  # head
    assert s.total_macs == expected
    assert s.total_params == model.num_parameters()
    attn = next(r for r in s.rows if r["name"] == "blocks.0.attn")
    assert attn["macs"] == N * D * 3 * D + 2 * N * N * D + N * D * D
    assert "blocks.0.attn.qkv (Linear)" in str(s)
