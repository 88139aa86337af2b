"""Tests of the CIFAR speed-run pieces: the ``cifar_speedrun`` net (sizes, parameter count,
whitening and identity initialisation, gradients) and the optimiser parts of its recipe
(``param_groups_norm_bias``, ``Lookahead``, ``FreezeAfter``)."""
import numpy as np
import pytest

import tinyvision as tv
from tinyvision import models, nn, optim
from tinyvision.models.speedrun import SpeedrunNet, identity_init_, init_whitening, patches


def fresh(**kwargs):
    tv.manual_seed(0)
    return models.create("cifar_speedrun", **kwargs)


def smooth_images(n, size=32, seed=0):
    """Random images with correlated neighbouring pixels and channels (a box blur of noise plus
    a shared component), so that the patch covariance is far from the identity."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, size + 2, size + 2))
    x = (x[:, :, :-2, :-2] + x[:, :, 1:-1, 1:-1] + x[:, :, 2:, 2:] + x[:, :, 1:-1, :-2]) / 4
    x += 0.8 * x.mean(axis=1, keepdims=True) + 0.3
    return x.astype(np.float32)


# ---------------------------------------------------------------- the network
def test_parameter_count_and_names():
    model = fresh()
    assert model.num_parameters() == 1_972_792                         # airbench94's 1.97M
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["whiten.weight"] + [f"blocks.{i}.norm{j}.weight" for i in range(3) for j in (1, 2)]
    assert model.num_parameters(trainable_only=True) == 1_972_792 - 288 - 2 * (64 + 256 + 256)
    assert "head.bias" not in model.state_dict() and "blocks.2.conv2.weight" in model.state_dict()
    assert models.cifar_speedrun(width_mult=0.5).widths == (32, 128, 128)
    norm = model.blocks[1].norm2
    assert (norm.momentum, norm.eps) == (0.4, 1e-12) and np.all(norm.weight.numpy() == 1)
    cfg = model.default_cfg
    assert cfg["input_size"] == (3, 32, 32) and cfg["architecture"] == "cifar_speedrun"
    with pytest.raises(ValueError, match="width_mult"):
        models.cifar_speedrun(width_mult=0)


def test_feature_map_sizes_31_15_7_3():
    model = fresh(width_mult=0.25)
    x = tv.randn(2, 3, 32, 32)
    h = model.act(model.whiten(x))
    sizes = [tuple(h.shape)]
    for block in model.blocks:
        h = block(h)
        sizes.append(tuple(h.shape))
    assert sizes == [(2, 24, 31, 31), (2, 16, 15, 15), (2, 64, 7, 7), (2, 64, 3, 3)]   # floor pooling
    pooled = model.forward_head(h, pre_logits=True)
    np.testing.assert_array_equal(pooled.numpy(), h.numpy().max(axis=(2, 3)))
    np.testing.assert_allclose(model(x).numpy(), pooled.numpy() @ model.head.weight.numpy().T / 9,
                               rtol=1e-5, atol=1e-7)


def test_forward_backward_float32_batch_8():
    model = fresh()
    y = model(tv.randn(8, 3, 32, 32))
    assert y.shape == (8, 10) and y.dtype == np.float32 and np.isfinite(y.numpy()).all()
    tv.ops.cross_entropy(y, tv.tensor(np.arange(8) % 10)).backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
        assert p.grad is None or np.isfinite(p.grad.numpy()).all(), name


def test_gradcheck_whole_small_net():
    """Float64 gradients of the logits w.r.t. every parameter (the frozen ones too), batch
    norm in training mode, on 20x20 images (19 -> 9 -> 4 -> 2 pixels); the input's gradient
    is the convolution's, checked in test_ops, and would triple the time."""
    tv.manual_seed(1)
    model = SpeedrunNet(widths=(2, 3, 3), num_classes=3).to(dtype=np.float64)
    x = tv.tensor(np.random.default_rng(0).standard_normal((3, 3, 20, 20)), dtype=np.float64)
    owners = [(m, name) for m in model.modules() for name, p in m._parameters.items() if p is not None]

    def logits(*params):
        for (m, name), p in zip(owners, params):
            m._parameters[name] = p
        return model(x)

    tv.gradcheck(logits, *[tv.tensor(m._parameters[name].data.copy(), requires_grad=True) for m, name in owners])


# ---------------------------------------------------------------- initialisation
def test_identity_init_passes_input_channels_through():
    tv.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    random_rows = conv.weight.numpy()[4:].copy()
    identity_init_(conv.weight)
    x = tv.randn(2, 4, 5, 5)
    y = conv(x).numpy()
    np.testing.assert_array_equal(y[:, :4], x.numpy())
    np.testing.assert_array_equal(conv.weight.numpy()[4:], random_rows)   # the rest stays random
    narrow = nn.Conv2d(6, 2, 3, padding=1, bias=False)
    identity_init_(narrow.weight)
    x = tv.randn(1, 6, 4, 4)
    np.testing.assert_array_equal(narrow(x).numpy(), x.numpy()[:, :2])
    block = fresh().blocks[1]
    assert np.all(block.conv1.weight.numpy()[:64, :, 1, 1] == np.eye(64))
    with pytest.raises(ValueError, match="odd"):
        identity_init_(nn.Conv2d(2, 2, 2).weight)


def test_init_whitening_gives_identity_covariance():
    model = fresh(width_mult=0.125)
    images = smooth_images(40)
    eigenvalues = init_whitening(model, images, eps=0.0)
    assert np.all(np.diff(eigenvalues) <= 0) and eigenvalues[-1] > 0
    out = model.whiten(tv.tensor(images)).numpy().transpose(0, 2, 3, 1).reshape(-1, 24)
    positive, negative = out[:, :12], out[:, 12:]
    np.testing.assert_allclose(positive.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(positive.T, bias=True), np.eye(12), atol=2e-3)
    np.testing.assert_allclose(negative, -positive, rtol=1e-6, atol=1e-6)
    # raw patches are strongly correlated: the test would fail on them
    assert np.abs(np.corrcoef(patches(images.astype(np.float64), 2, 2).T) - np.eye(12)).max() > 0.4
    # with eps, direction i keeps variance lambda_i / (lambda_i + eps)
    init_whitening(model, images, eps=0.05)
    out = model.whiten(tv.tensor(images)).numpy()[:, :12].transpose(0, 2, 3, 1).reshape(-1, 12)
    np.testing.assert_allclose(np.cov(out.T, bias=True), np.diag(eigenvalues / (eigenvalues + 0.05)), atol=2e-3)


def test_patches_match_the_conv_weight_layout():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    w = np.random.default_rng(1).standard_normal((1, 3, 2, 2))
    y = tv.ops.conv2d(tv.tensor(x, dtype=np.float64), tv.tensor(w, dtype=np.float64)).numpy()   # (2, 1, 4, 3)
    np.testing.assert_allclose(patches(x, 2, 2) @ w.reshape(-1), y.transpose(0, 2, 3, 1).reshape(-1), atol=1e-12)


def test_init_whitening_rejects_bad_images():
    model = fresh(width_mult=0.125)
    with pytest.raises(ValueError, match=r"expected float images \(N, 3, H, W\)"):
        init_whitening(model, np.zeros((4, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="expected float images"):
        init_whitening(model, np.zeros((4, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="give more images"):
        init_whitening(model, np.zeros((1, 3, 3, 3), np.float32))


# ---------------------------------------------------------------- optimiser pieces
def test_param_groups_norm_bias():
    model = fresh(width_mult=0.125)
    rest, biases = optim.param_groups_norm_bias(model, lr=0.01, weight_decay=0.5)
    expect = [getattr(block, f"norm{j}").bias for block in model.blocks for j in (1, 2)]
    assert [id(p) for p in biases["params"]] == [id(p) for p in expect]
    assert biases["lr"] == pytest.approx(0.64) and biases["weight_decay"] == pytest.approx(0.5 / 64)
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(rest["lr"] * rest["weight_decay"])
    assert (rest["lr"], rest["weight_decay"]) == (0.01, 0.5)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in rest["params"]} == trainable - {id(p) for p in expect}
    assert id(model.whiten.bias) in {id(p) for p in rest["params"]}
    _, exempt = optim.param_groups_norm_bias(model, 0.01, 0.5, norm_bias_lr_scale=8, norm_bias_weight_decay=0.0)
    assert (exempt["lr"], exempt["weight_decay"]) == (0.08, 0.0)
    opt = optim.SGD(optim.param_groups_norm_bias(model, 0.01, 0.5), lr=0.01, momentum=0.9, nesterov=True)
    assert [g["lr"] for g in opt.param_groups] == [0.01, pytest.approx(0.64)]


def _linear_problem():
    """A linear layer trained by SGD on a fixed least-squares problem."""
    tv.manual_seed(0)
    model = nn.Linear(3, 2)
    x, t = tv.randn(5, 3), tv.randn(5, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

    def train_step():
        opt.zero_grad()
        ((model(x) - t) ** 2).mean().backward()
        opt.step()
    return model, opt, train_step


def test_lookahead_matches_hand_computation():
    model, opt, train_step = _linear_problem()
    lookahead = optim.Lookahead(model, alpha=0.3, k=3)
    slow = {n: p.numpy().copy() for n, p in model.named_parameters()}
    for step in range(1, 8):
        before = {n: p.numpy().copy() for n, p in model.named_parameters()}
        train_step()
        fast = {n: p.numpy().copy() for n, p in model.named_parameters()}
        assert any(not np.array_equal(before[n], fast[n]) for n in fast)
        synced = lookahead.step()
        assert synced == (step % 3 == 0)
        if synced:
            slow = {n: slow[n] + 0.3 * (fast[n] - slow[n]) for n in slow}
            for n, p in model.named_parameters():
                np.testing.assert_allclose(p.numpy(), slow[n], rtol=1e-6)
        else:
            for n, p in model.named_parameters():
                np.testing.assert_array_equal(p.numpy(), fast[n])
    lookahead.sync(0.0)                     # the end of a run: the model takes the average
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), slow[n], rtol=1e-6)


def test_lookahead_schedule_and_buffers():
    tv.manual_seed(0)
    model = nn.BatchNorm1d(2)
    seen = []
    lookahead = optim.Lookahead(model, alpha=lambda t: seen.append(t) or 0.5, k=2)
    start = model.running_mean.numpy().copy()
    model(tv.randn(4, 2) + 3.0)                   # moves the running mean (a buffer)
    moved = model.running_mean.numpy().copy()
    lookahead.step()
    lookahead.step()
    assert seen == [2]
    np.testing.assert_allclose(model.running_mean.numpy(), start + 0.5 * (moved - start), rtol=1e-6)
    assert int(model.num_batches_tracked.numpy()) == 1       # integer buffers are not averaged
    for bad in (dict(k=0), dict(alpha=1.5)):
        with pytest.raises(ValueError, match="Lookahead"):
            optim.Lookahead(model, **bad)


def test_lookahead_resume_is_exact():
    model, opt, train_step = _linear_problem()
    lookahead = optim.Lookahead(model, alpha=0.4, k=3)
    for _ in range(10):
        train_step()
        lookahead.step()
    expected = model.state_dict()

    model, opt, train_step = _linear_problem()
    lookahead = optim.Lookahead(model, alpha=0.4, k=3)
    for _ in range(4):                            # stop between two synchronisations
        train_step()
        lookahead.step()
    saved = (model.state_dict(), opt.state_dict(), lookahead.state_dict())
    train_step()                                  # later steps must not change the saved state
    lookahead.step()
    lookahead.step()

    model, opt, train_step = _linear_problem()
    lookahead = optim.Lookahead(model, alpha=0.4, k=3)
    model.load_state_dict(saved[0])
    opt.load_state_dict(saved[1])
    lookahead.load_state_dict(saved[2])
    for _ in range(6):
        train_step()
        lookahead.step()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name])
    with pytest.raises(ValueError, match="shape"):
        optim.Lookahead(nn.Linear(2, 2)).load_state_dict(saved[2])


def test_freeze_after_stops_the_parameter_under_sgd():
    model = fresh(width_mult=0.125)
    bias, other = model.whiten.bias, model.head.weight
    opt = optim.SGD(optim.param_groups_norm_bias(model, 0.01, 5e-4), lr=0.01, momentum=0.9, nesterov=True)
    freeze = optim.FreezeAfter([bias], epochs=2)
    x, y = tv.randn(4, 3, 32, 32), tv.tensor(np.arange(4))
    history = []
    for epoch in range(4):
        assert freeze.step(epoch) == (epoch < 2) and bias.requires_grad == (epoch < 2)
        opt.zero_grad()
        tv.ops.cross_entropy(model(x), y).backward()
        opt.step()
        history.append((bias.numpy().copy(), other.numpy().copy()))
    assert not np.array_equal(history[0][0], history[1][0])           # trained in epochs 0 and 1
    np.testing.assert_array_equal(history[1][0], history[2][0])       # momentum and decay: no step
    np.testing.assert_array_equal(history[2][0], history[3][0])
    assert not np.array_equal(history[2][1], history[3][1])           # the rest trains on
    assert bias.grad is None
    assert freeze.step(1) and bias.requires_grad                      # a resumed run at epoch 1
    with pytest.raises(ValueError, match="epochs"):
        optim.FreezeAfter([bias], epochs=-1)


def test_recipe_pieces_on_device(device):
    """Whitening, the groups, Lookahead and freezing on the model's device: two SGD steps and
    a synchronisation give the CPU's numbers; the Lookahead state comes back as host arrays."""
    images = smooth_images(8)
    x, y = images[:4], tv.tensor(np.arange(4))

    def run(dev):
        model = fresh(width_mult=0.125).to(dev)
        init_whitening(model, tv.tensor(images, device=dev))
        opt = optim.SGD(optim.param_groups_norm_bias(model, 0.01, 5e-4), lr=0.01, momentum=0.9, nesterov=True)
        lookahead, freeze = optim.Lookahead(model, alpha=0.5, k=2), optim.FreezeAfter(model.whiten.bias, 1)
        for epoch in range(2):
            freeze.step(epoch)
            opt.zero_grad()
            tv.ops.cross_entropy(model(tv.tensor(x, device=dev)), y.to(dev)).backward()
            opt.step()
            lookahead.step()
        state = lookahead.state_dict()
        assert all(isinstance(a, np.ndarray) for a in state["slow"].values())
        lookahead.load_state_dict(state)
        return model.state_dict()

    expected, got = run("cpu"), run(device)
    for name, value in got.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
