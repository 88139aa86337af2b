"""CPU and GPU agree: each model's forward and backward on CuPy match NumPy within float32
tolerance, and a few training steps give the same losses. Skipped without CuPy and a GPU."""
import numpy as np
import pytest

import tinyvision as tv
import tinyvision.models  # noqa: F401  (registers tv.models)

pytestmark = pytest.mark.gpu

MODELS = ["resnet20", "plain20", "vit_cifar_tiny", "resnet18"]


def _pair(name):
    tv.manual_seed(0)
    cpu = tv.models.create(name, num_classes=10)
    gpu = tv.models.create(name, num_classes=10)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_match(name):
    cpu, gpu = _pair(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    grads = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        model.train()
        loss = tv.nn.functional.cross_entropy(model(tv.tensor(x, device=device)), tv.tensor(y, device=device))
        loss.backward()
        grads.append((loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}))
    (lc, gc), (lg, gg) = grads
    assert abs(lc - lg) < 1e-4 * max(1.0, abs(lc))
    for n in gc:
        scale = np.abs(gc[n]).max() + 1e-6
        np.testing.assert_allclose(gg[n], gc[n], atol=2e-3 * scale, rtol=0, err_msg=n)


def test_training_steps_match():
    cpu, gpu = _pair("resnet20")
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((8, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 8)) for _ in range(3)]
    losses = {}
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        opt = tv.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        out = []
        for x, y in batches:
            loss = tv.nn.functional.cross_entropy(model(tv.tensor(x, device=device)), tv.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        losses[device] = out
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-3)
