"""Optimizers, schedules and clipping against hand-computed NumPy updates and closed forms."""
import math
import threading
import time

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import optim


def _param(rng, shape=(4, 3), dtype=np.float64):
    return tv.Tensor(rng.standard_normal(shape).astype(dtype), dtype=dtype, requires_grad=True)


def _run(opt, params, grads):
    """Apply opt over a list of steps, each a list of gradient arrays (one per parameter)."""
    for step in grads:
        for p, g in zip(params, step):
            p.grad = tv.Tensor(g, dtype=g.dtype)
        opt.step()


def _sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf = p.copy(), None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def _adam_reference(p, grads, lr, betas, eps, weight_decay, decoupled):
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.5),
             dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.1, weight_decay=0.01),
             dict(lr=0.1, momentum=0.8, weight_decay=0.01, nesterov=True)]


@pytest.mark.parametrize("options", SGD_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_sgd_matches_hand_computed_update(rng, options):
    p = _param(rng)
    p0 = p.numpy().copy()
    grads = [rng.standard_normal(p.shape) for _ in range(3)]
    _run(optim.SGD([p], **options), [p], [[g] for g in grads])
    np.testing.assert_allclose(p.numpy(), _sgd_reference(p0, grads, **options), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cls, wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1), (optim.AdamW, 0.0)])
def test_adam_and_adamw_match_hand_computed_update(rng, cls, wd):
    p = _param(rng)
    p0 = p.numpy().copy()
    grads = [rng.standard_normal(p.shape) for _ in range(4)]
    opt = cls([p], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    _run(opt, [p], [[g] for g in grads])
    ref = _adam_reference(p0, grads, 0.01, (0.8, 0.99), 1e-6, wd, decoupled=cls is optim.AdamW)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-12, atol=1e-14)
    assert opt.state[p]["step"] == 4


def test_adam_first_step_is_lr_times_sign(rng):
    # Bias correction: after one step m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps).
    p = _param(rng)
    p0 = p.numpy().copy()
    g = rng.standard_normal(p.shape)
    _run(optim.Adam([p], lr=0.1, eps=0.0), [p], [[g]])
    np.testing.assert_allclose(p.numpy(), p0 - 0.1 * np.sign(g), rtol=1e-12)


def test_adamw_decay_is_decoupled_from_the_gradient_scale(rng):
    # With a zero gradient Adam's moments stay 0, so AdamW only shrinks: p (1 - lr wd).
    p = _param(rng)
    p0 = p.numpy().copy()
    _run(optim.AdamW([p], lr=0.1, weight_decay=0.5), [p], [[np.zeros(p.shape)]])
    np.testing.assert_allclose(p.numpy(), p0 * (1 - 0.1 * 0.5), rtol=1e-15)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                                  lambda ps: optim.Adam(ps, weight_decay=1e-3), lambda ps: optim.AdamW(ps)])
def test_float32_stays_float32(rng, make):
    p = _param(rng, dtype=np.float32)
    opt = make([p])
    _run(opt, [p], [[rng.standard_normal(p.shape).astype(np.float32)] for _ in range(3)])
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_updates_are_in_place_and_leave_grad_alone(rng):
    p = _param(rng)
    array = p.data
    g = rng.standard_normal(p.shape)
    p.grad = tv.Tensor(g.copy(), dtype=np.float64)
    optim.Adam([p], weight_decay=0.1).step()
    assert p.data is array and p.grad.requires_grad is False
    np.testing.assert_array_equal(p.grad.numpy(), g)


def test_params_without_grad_are_skipped_and_zero_grad_clears(rng):
    a, b = _param(rng), _param(rng)
    b0 = b.numpy().copy()
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad = tv.Tensor(np.ones(a.shape), dtype=np.float64)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), b0)
    assert b not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_param_groups_with_their_own_options(rng):
    a, b = _param(rng), _param(rng)
    a0, b0 = a.numpy().copy(), b.numpy().copy()
    opt = optim.SGD([{"params": [a], "weight_decay": 0.1}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    grads = [[rng.standard_normal(a.shape), rng.standard_normal(b.shape)] for _ in range(2)]
    _run(opt, [a, b], grads)
    np.testing.assert_allclose(a.numpy(), _sgd_reference(a0, [g[0] for g in grads], 0.1, 0.9, weight_decay=0.1))
    np.testing.assert_allclose(b.numpy(), _sgd_reference(b0, [g[1] for g in grads], 0.5, 0.9))
    c = _param(rng)
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.0


def test_constructor_errors(rng):
    p = _param(rng)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="required option 'lr'"):
        optim.SGD([p])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))


def test_param_groups_weight_decay_exempts_biases_norms_and_named_tokens():
    model = tv.nn.Sequential(tv.nn.Linear(4, 8), tv.nn.LayerNorm(8), tv.nn.Linear(8, 2))
    model.cls_token = tv.nn.Parameter(np.zeros((1, 1, 8), np.float32))
    frozen = model[2].weight.requires_grad_(False)
    decay, exempt = optim.param_groups_weight_decay(model, 5e-4, skip=("cls_token",))
    assert decay["weight_decay"] == 5e-4 and exempt["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(model[0].weight)]
    exempt_ids = {id(p) for p in exempt["params"]}
    assert exempt_ids == {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[2].bias),
                          id(model.cls_token)}
    assert id(frozen) not in exempt_ids
    vit = tv.models.create("vit_cifar_tiny")  # the model's own no_weight_decay() names are honoured
    names = {id(p): n for n, p in vit.named_parameters()}
    exempt_names = {names[id(p)] for p in optim.param_groups_weight_decay(vit, 0.05)[1]["params"]}
    assert {"cls_token", "pos_embed"} <= exempt_names


def test_tiny_mlp_loss_falls():
    rng = np.random.default_rng(1)
    x = tv.Tensor(rng.standard_normal((64, 5)))
    y = tv.Tensor(np.sin(x.numpy() @ rng.standard_normal((5, 1))))
    w1, b1 = tv.Tensor(rng.standard_normal((16, 5)) * 0.5, requires_grad=True), tv.zeros(16, requires_grad=True)
    w2, b2 = tv.Tensor(rng.standard_normal((1, 16)) * 0.5, requires_grad=True), tv.zeros(1, requires_grad=True)
    opt = optim.AdamW([w1, b1, w2, b2], lr=0.02)
    losses = []
    for _ in range(150):
        loss = tv.ops.mse_loss(tv.ops.linear(tv.ops.tanh(tv.ops.linear(x, w1, b1)), w2, b2), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
                                  lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-2),
                                  lambda ps: optim.AdamW(ps, lr=0.01)])
def test_state_dict_round_trip_resumes_bit_for_bit(tmp_path, make):
    rng = np.random.default_rng(2)
    init = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(6)]

    def fresh(arrays):
        params = [tv.Tensor(a.copy(), requires_grad=True) for a in arrays]
        return params, make([{"params": params[:1]}, {"params": params[1:], "weight_decay": 0.0}])

    params, opt = fresh(init)
    _run(opt, params, grads[:3])
    tv.save({"opt": opt.state_dict()}, tmp_path / "ckpt.tvz")
    saved_params = [p.numpy().copy() for p in params]
    _run(opt, params, grads[3:])

    params2, opt2 = fresh(saved_params)
    opt2.load_state_dict(tv.load(tmp_path / "ckpt.tvz")["opt"])
    _run(opt2, params2, grads[3:])
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert b.dtype == np.float32
    assert opt2.param_groups[1]["weight_decay"] == 0.0


def test_state_dict_is_a_snapshot(rng):
    p = _param(rng)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    _run(opt, [p], [[np.ones(p.shape)]])
    sd = opt.state_dict()
    before = sd["state"][0]["momentum_buffer"].copy()
    _run(opt, [p], [[np.ones(p.shape)]])
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], before)
    opt2 = optim.SGD([p], lr=0.1, momentum=0.9)
    opt2.load_state_dict(sd)
    _run(opt2, [p], [[np.ones(p.shape)]])
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], before)  # loading copied it


def test_load_state_dict_checks_the_groups(rng):
    p, q = _param(rng), _param(rng)
    sd = optim.SGD([p, q], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="2 parameters in the saved"):
        optim.SGD([p], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="1 parameter groups"):
        optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1).load_state_dict(sd)


# ---------------------------------------------------------------- schedules
def _opt(lr=0.1, groups=1):
    return optim.SGD([{"params": [tv.zeros(2, requires_grad=True)], "lr": lr * (i + 1)} for i in range(groups)], lr=lr)


def _trace(sched, n):
    """The groups' lr after 0..n-1 step() calls, with the closed form at each."""
    out = []
    for t in range(n):
        lrs = [g["lr"] for g in sched.optimizer.param_groups]
        assert lrs == sched.lr_at(t) == sched.get_last_lr()
        out.append(lrs)
        sched.step()
    return np.array(out)


def test_step_and_multistep_lr():
    lrs = _trace(optim.StepLR(_opt(groups=2), step_size=3, gamma=0.5), 8)
    np.testing.assert_allclose(lrs[:, 0], [0.1] * 3 + [0.05] * 3 + [0.025] * 2)
    np.testing.assert_allclose(lrs[:, 1], 2 * lrs[:, 0])
    lrs = _trace(optim.MultiStepLR(_opt(), milestones=[4, 2], gamma=0.1), 6)[:, 0]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_annealing_lr():
    lrs = _trace(optim.CosineAnnealingLR(_opt(), T_max=10, eta_min=0.01), 11)[:, 0]
    t = np.arange(11)
    np.testing.assert_allclose(lrs, 0.01 + 0.09 * (1 + np.cos(np.pi * t / 10)) / 2)
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.055) and lrs[10] == pytest.approx(0.01)


def test_linear_warmup_then_cosine():
    opt = _opt()
    sched = optim.LinearWarmup(optim.CosineAnnealingLR(opt, T_max=6), warmup_steps=4)
    lrs = _trace(sched, 11)[:, 0]
    np.testing.assert_allclose(lrs[:4], 0.1 * np.arange(1, 5) / 5)       # (t + 1) / (W + 1)
    np.testing.assert_allclose(lrs[4:], 0.1 * (1 + np.cos(np.pi * np.arange(7) / 6)) / 2)
    assert sched.last_step == 11 and sched.after.last_step == 7
    lrs = _trace(optim.LinearWarmup(optim.StepLR(_opt(), 2, 0.5), warmup_steps=2, start_factor=0.0), 6)[:, 0]
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.1, 0.05, 0.05])


def test_one_cycle_start_peak_end():
    total, max_lr = 100, 0.4
    sched = optim.OneCycleLR(_opt(), max_lr=max_lr, total_steps=total, pct_start=0.25)
    lrs = _trace(sched, total)[:, 0]
    initial = max_lr / 25
    assert lrs[0] == pytest.approx(initial)
    assert lrs[24] == pytest.approx(max_lr) and lrs.argmax() == 24         # pct_start * total - 1
    assert lrs[-1] == pytest.approx(initial / 1e4)
    # mid-phase values from the cosine formula
    assert lrs[12] == pytest.approx(max_lr + (initial - max_lr) / 2 * (math.cos(math.pi * 12 / 24) + 1))
    assert lrs[62] == pytest.approx(initial / 1e4 + (max_lr - initial / 1e4) / 2 * (math.cos(math.pi * 38 / 75) + 1))
    linear = optim.OneCycleLR(_opt(), max_lr=max_lr, total_steps=total, anneal_strategy="linear")
    assert linear.lr_at(14.5) == pytest.approx([(initial + max_lr) / 2])
    assert sched.last_step == total  # reached by the step() after the last update: allowed
    with pytest.raises(ValueError, match="past total_steps"):
        sched.step()
    assert sched.last_step == total


@pytest.mark.parametrize("name", ["step", "multistep", "cosine", "onecycle"])
def test_schedules_match_pytorch(name):
    torch = pytest.importorskip("torch")
    make = {
        "step": lambda o, m: m.StepLR(o, step_size=3, gamma=0.3),
        "multistep": lambda o, m: m.MultiStepLR(o, milestones=[2, 5], gamma=0.5),
        "cosine": lambda o, m: m.CosineAnnealingLR(o, T_max=9, eta_min=1e-3),
        "onecycle": lambda o, m: m.OneCycleLR(o, max_lr=0.3, total_steps=20, **(
            {"cycle_momentum": False} if m is torch.optim.lr_scheduler else {})),
    }[name]
    ours = make(_opt(), optim)
    theirs_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    theirs = make(theirs_opt, torch.optim.lr_scheduler)
    for _ in range(19):
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-9, abs=1e-15)
        theirs_opt.step()
        theirs.step()
        ours.step()


def test_scheduler_state_dict_round_trip(tmp_path):
    def make():
        opt = _opt(groups=2)
        return optim.LinearWarmup(optim.CosineAnnealingLR(opt, T_max=20), warmup_steps=5)

    a = make()
    for _ in range(7):
        a.step()
    b = make()
    tv.save(a.state_dict(), tmp_path / "sched.tvz")
    b.load_state_dict(tv.load(tmp_path / "sched.tvz"))
    assert b.last_step == 7 and b.after.last_step == 2
    assert [g["lr"] for g in b.optimizer.param_groups] == a.get_last_lr()
    a.step(), b.step()
    assert a.get_last_lr() == b.get_last_lr()


# ---------------------------------------------------------------- clipping
def _with_grads(rng, shapes, scale):
    params = []
    for s in shapes:
        p = tv.Tensor(np.zeros(s), dtype=np.float64, requires_grad=True)
        p.grad = tv.Tensor(rng.standard_normal(s) * scale, dtype=np.float64)
        params.append(p)
    return params


def test_clip_grad_norm_rescales_by_the_formula(rng):
    params = _with_grads(rng, [(3, 4), (5,), (2, 2, 2)], 10.0)
    before = [p.grad.numpy().copy() for p in params]
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in before))
    total = optim.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, float) and total == pytest.approx(norm, rel=1e-12)
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad.numpy(), g * (1.0 / (norm + 1e-6)), rtol=1e-13)
    assert math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params)) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_untouched(rng):
    params = _with_grads(rng, [(3, 4), (6,)], 0.01)
    before = [p.grad.numpy().copy() for p in params]
    optim.clip_grad_norm_(params, max_norm=1.0)
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_clip_grad_norm_other_norms_and_shared_gradient_arrays(rng):
    params = _with_grads(rng, [(3, 4), (6,)], 1.0)
    inf_norm = max(float(np.abs(p.grad.numpy()).max()) for p in params)
    assert optim.clip_grad_norm_(params, 100.0, norm_type="inf") == pytest.approx(inf_norm)
    l1 = sum(float(np.abs(p.grad.numpy()).sum()) for p in params)
    assert optim.clip_grad_norm_(params, 100.0, norm_type=1) == pytest.approx(l1)
    # a + b hands both leaves the same gradient array: each must be scaled once
    a, b = tv.Tensor(np.zeros(3), requires_grad=True), tv.Tensor(np.zeros(3), requires_grad=True)
    (a + b).backward(np.full(3, 4.0))
    optim.clip_grad_norm_([a, b], max_norm=1.0)
    np.testing.assert_allclose(a.grad.numpy(), 4.0 / (math.sqrt(96) + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy())


def test_clip_grad_value(rng):
    params = _with_grads(rng, [(4, 5)], 2.0)
    g = params[0].grad.numpy().copy()
    optim.clip_grad_value_(params, 0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), np.clip(g, -0.5, 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        optim.clip_grad_value_(params, -1)


# ------------------------------------------------------------------ nn.utils.update_bn
def test_update_bn_averages_the_loaders_batch_statistics(rng):
    net = tv.nn.Sequential(tv.nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64), tv.nn.BatchNorm2d(4, dtype=np.float64),
                           tv.nn.ReLU(), tv.nn.Conv2d(4, 2, 1, dtype=np.float64),
                           tv.nn.BatchNorm2d(2, momentum=0.3, dtype=np.float64))
    bn1, bn2 = net[1], net[4]
    bn1.running_mean.data[:] = 7.0  # stale estimates, from 5 training steps, that must not survive
    bn1.num_batches_tracked.data[...] = 5
    net.eval()
    net[2].train()                  # a mixed mode, restored as it was
    weights = {k: v.copy() for k, v in net.state_dict().items() if "running" not in k and "tracked" not in k}
    # three batches with different statistics, the last one smaller; as (x, y) pairs
    batches = [(tv.Tensor(rng.normal(i, 1 + i, (n, 3, 5, 5)), dtype=np.float64), tv.Tensor(np.zeros(n)))
               for i, n in enumerate((6, 6, 3))]
    assert tv.nn.utils.update_bn(batches, net) == 15

    # expected: the plain mean over batches of each batch's mean and unbiased variance at each
    # layer's input, the layers before it normalising with batch statistics (training mode)
    def batch_normed(a, bn):
        return tv.ops.batch_norm(a, None, None, bn.weight, bn.bias, training=True)
    for layer, upto in ((bn1, lambda x: net[0](x)),
                        (bn2, lambda x: net[3](net[2](batch_normed(net[0](x), bn1))))):
        a = [upto(x).numpy() for x, _ in batches]
        mean = np.mean([f.mean(axis=(0, 2, 3)) for f in a], axis=0)
        var = np.mean([f.var(axis=(0, 2, 3), ddof=1) for f in a], axis=0)
        np.testing.assert_allclose(layer.running_mean.numpy(), mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_var.numpy(), var, rtol=1e-10)
    assert int(bn1.num_batches_tracked.data) == 3 and int(bn2.num_batches_tracked.data) == 3
    # momenta, modes and weights as before; no graph or gradient was recorded
    assert bn1.momentum == 0.1 and bn2.momentum == 0.3
    assert [m.training for m in net.modules()] == [False, False, False, True, False, False]
    for k, v in net.state_dict().items():
        if k in weights:
            np.testing.assert_array_equal(v, weights[k])
    assert all(p.grad is None for p in net.parameters()) and tv.is_grad_enabled()


def test_update_bn_max_images_bare_batches_and_errors(rng):
    bn = tv.nn.BatchNorm2d(2, dtype=np.float64)
    xs = [tv.Tensor(rng.normal(i, 1.0, (4, 2, 3, 3)), dtype=np.float64) for i in range(3)]  # bare
    assert tv.nn.utils.update_bn(xs, bn, max_images=6) == 8            # stops after batch 2
    np.testing.assert_allclose(bn.running_mean.numpy(),
                               (xs[0].numpy().mean(axis=(0, 2, 3)) + xs[1].numpy().mean(axis=(0, 2, 3))) / 2)
    before = bn.running_mean.numpy().copy()
    with pytest.raises(ValueError, match="no batches"):
        tv.nn.utils.update_bn([], bn)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    with pytest.raises(ValueError, match="max_images"):
        tv.nn.utils.update_bn(xs, bn, max_images=0)
    assert tv.nn.utils.update_bn(xs, tv.nn.Linear(3, 3)) == 0          # nothing to update


def test_update_bn_with_a_prefetching_data_loader(rng):
    images = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    dataset = [(image, 0) for image in images]          # any __len__/__getitem__ data set
    loader = tv.data.DataLoader(dataset, batch_size=16, prefetch=2)
    bn = tv.nn.BatchNorm2d(3)
    threads = threading.active_count()
    assert tv.nn.utils.update_bn(loader, bn, max_images=20) == 32
    for _ in range(50):                                  # stopped early: the prefetch thread ends
        if threading.active_count() == threads:
            break
        time.sleep(0.02)
    assert threading.active_count() == threads
    first = [x.numpy() for x, _ in loader][:2]
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([f.mean(axis=(0, 2, 3)) for f in first], axis=0),
                               rtol=1e-5)


@pytest.mark.parametrize("schedule,warmup", [("onecycle", 0), ("cosine", 0), ("cosine", 1)])
def test_trainer_schedule_spans_exactly_the_run(schedule, warmup):
    """train.build_scheduler spans epochs x steps-per-epoch step() calls: one-cycle's last update
    uses its minimum and one more step() raises; cosine reaches zero with the run's last step()."""
    from types import SimpleNamespace
    from tinyvision.train import build_scheduler
    epochs, steps = 4, 5
    cfg = SimpleNamespace(epochs=epochs, warmup_epochs=warmup, schedule=schedule, lr=0.4)
    sched = build_scheduler(_opt(lr=0.4), cfg, steps)
    lrs = _trace(sched, epochs * steps)[:, 0]
    after = sched.optimizer.param_groups[0]["lr"]
    if schedule == "onecycle":
        assert lrs[-1] == pytest.approx(0.4 / 25 / 1e4) and lrs[-2] > 2 * lrs[-1]
        with pytest.raises(ValueError, match="past total_steps"):
            sched.step()
    else:
        assert lrs[-1] > 0.0 and after == pytest.approx(0.0, abs=1e-12)


def test_optim_imports_nothing_from_nn():
    """nn imports optim (nn.utils re-exports clipping), so optim must not import nn: the layers
    stay a one-way stack. Batch norm layers are recognised by their running statistics."""
    import glob
    import os
    import re
    folder = os.path.dirname(optim.__file__)
    for path in glob.glob(os.path.join(folder, "*.py")):
        source = open(path).read()
        assert not re.search(r"^\s*(from \.\.nn\b|from \.\. import .*\bnn\b|import tinyvision\.nn)", source, re.M), path
