"""A float32 run stays float32: no op output or gradient anywhere in a training step of a
ResNet or a ViT is float64 (a stray NumPy float64 scalar would silently double the memory
traffic and halve GEMM speed)."""
import numpy as np
import pytest

import tinyvision as tv
import tinyvision.models  # noqa: F401
from tinyvision.tensor import Function


@pytest.fixture
def float64_spy(monkeypatch):
    """Records the name of every op whose output or input gradient is not float32."""
    seen = []
    original = Function.__dict__["apply"].__func__

    def apply(cls, *inputs, **options):
        out = original(cls, *inputs, **options)
        if out.dtype.kind == "f" and out.dtype != np.float32:
            seen.append(f"{cls.__name__} forward {out.dtype}")
        ctx = out._ctx
        if ctx is not None:
            inner = ctx.backward

            def backward(g):
                grads = inner(g)
                for gi in grads if isinstance(grads, tuple) else (grads,):
                    if gi is not None and gi.dtype != np.float32:
                        seen.append(f"{cls.__name__} backward {gi.dtype}")
                return grads
            ctx.backward = backward
        return out

    monkeypatch.setattr(Function, "apply", classmethod(apply))
    return seen


@pytest.mark.parametrize("name", ["resnet20", "vit_cifar_tiny"])
def test_training_step_has_no_float64(name, float64_spy):
    model = tv.models.create(name, num_classes=10)
    opt = tv.optim.AdamW(tv.optim.param_groups_weight_decay(model, 0.05), lr=1e-3)
    sched = tv.optim.LinearWarmup(tv.optim.CosineAnnealingLR(opt, T_max=10), warmup_steps=2)
    rng = np.random.default_rng(0)
    x = tv.tensor(rng.standard_normal((4, 3, 32, 32)))
    y = tv.tensor(rng.integers(0, 10, 4))
    for _ in range(2):
        loss = tv.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        tv.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    assert float64_spy == []
    for n, p in model.named_parameters():
        assert p.dtype == np.float32, n
    for n, b in model.named_buffers():
        assert b.dtype in (np.float32, np.int64), n
