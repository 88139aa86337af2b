"""External weights: models built by timm and torchvision themselves, exported to
.safetensors as their users would, load into tinyvision and give the same logits; and a
tinyvision ViT's .safetensors loads into timm. Skipped where timm/torchvision are absent (they
are never dependencies of tinyvision; `pip install timm torchvision` to run these)."""
import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models

try:   # a torchvision wheel built for another torch fails at import with a RuntimeError
    import safetensors.torch as safetensors_torch
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001
    pytest.skip(f"needs torch, torchvision and safetensors that import together ({e})", allow_module_level=True)


def _perturb(net, seed=0):
    """Random weights all through, including biases, norm affines and BN statistics: a fresh
    timm/torchvision model has zero biases and unit norms, which would hide a misplaced tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g))
                else:
                    t.add_(0.05 * torch.randn(t.shape, generator=g))
    return net.eval()


def _export(net, path):
    safetensors_torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()
                                 if not k.endswith("num_batches_tracked")}, str(path))
    return str(path)


def _compare(theirs, mine, size, atol):
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with tv.no_grad():
        got = mine.eval()(tv.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)


def test_torchvision_resnet18_file_loads_and_agrees(tmp_path):
    theirs = _perturb(torchvision.models.resnet18(num_classes=10))
    mine = models.create("resnet18", num_classes=10)
    result = models.load_pretrained(mine, _export(theirs, tmp_path / "resnet18.safetensors"))
    assert not any(result)          # nothing missing, unexpected or mismatched
    _compare(theirs, mine, 64, atol=1e-3)


def test_torchvision_vit_file_loads_and_agrees(tmp_path):
    from torchvision.models.vision_transformer import VisionTransformer as TorchvisionViT
    theirs = _perturb(TorchvisionViT(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                                     mlp_dim=128, num_classes=10))
    mine = models.vit.VisionTransformer(img_size=32, patch_size=8, num_classes=10, embed_dim=64, depth=2,
                                        num_heads=4, mlp_ratio=2.0)
    models.load_pretrained(mine, _export(theirs, tmp_path / "vit.safetensors"))   # renamed to timm's names
    _compare(theirs, mine, 32, atol=1e-4)


def test_timm_vit_tiny_both_directions(tmp_path):
    timm = pytest.importorskip("timm")
    theirs = _perturb(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10))
    mine = models.create("vit_tiny_patch16_224", num_classes=10)
    models.load_pretrained(mine, _export(theirs, tmp_path / "timm.safetensors"))
    _compare(theirs, mine, 224, atol=1e-4)

    # and back: a model trained here continues in timm
    back = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10).eval()
    path = tmp_path / "mine.safetensors"
    models.save_pretrained(mine, str(path))
    back.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    _compare(back, mine, 224, atol=1e-4)
