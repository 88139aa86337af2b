"""Tests of the CIFAR speed-run pieces: the ``cifar_speedrun`` net (sizes, parameter count,
whitening and identity initialisation, gradients) and the optimiser parts of its recipe
(``param_groups_norm_bias``, ``Lookahead``, ``FreezeAfter``)."""
import dataclasses

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


# ---------------------------------------------------------------- the recipe speedrun_cpu and its loop
from types import SimpleNamespace  # noqa: E402

from cifar_fixture import write_cifar_batches  # noqa: E402
from test_train import assert_same_weights, interrupt_and_resume  # noqa: E402
from tinyvision import data  # noqa: E402
from tinyvision.errors import InputError  # noqa: E402
from tinyvision.recipes import TrainConfig, build_optimizer, build_scheduler, build_transform, speedrun_sgd  # noqa: E402
from tinyvision.serialization import load  # noqa: E402
from tinyvision.speedrun import (WHITENING_STREAM, AlternatingFlips, SpeedrunTrainer,  # noqa: E402
                                 lookahead_alpha)
from tinyvision.train import Trainer  # noqa: E402


@pytest.fixture
def cifar_dir(tmp_path):
    return write_cifar_batches(str(tmp_path / "data"))     # 200 training images, 100 test


def speedrun_config(cifar_dir, out, **kw):
    """speedrun_cpu on the fixture: a 1/8-width net, 8 steps of 25 images per epoch."""
    base = dict(recipe="speedrun_cpu", data=cifar_dir, out=str(out), epochs=2, batch_size=25, lr=0.05,
                prefetch=0, eval_batch_size=50, log_interval=2, model_kwargs={"width_mult": 0.125})
    base.update(kw)
    return TrainConfig(**base)


def test_speedrun_cpu_resolves_to_airbench94s_recipe_and_flags_override_it():
    cfg = TrainConfig(recipe="speedrun_cpu").resolved()
    kilostep = 1024 * (1 + 1 / (1 - 0.85))                      # airbench's scale for momentum 0.85
    expected = dict(model="cifar_speedrun", epochs=18, optimizer="sgd", momentum=0.85, nesterov=True,
                    norm_bias_lr_scale=64.0, schedule="triangle", label_smoothing=0.2, clip_grad=0.0,
                    batch_size=512, augment="translate2_flip", alternating_flip=True, whitening_images=5000,
                    whiten_bias_epochs=3, lookahead_every=5, final_tta=[True, 1])
    assert {k: getattr(cfg, k) for k in expected} == expected
    # a sum loss at 11.5 / kilostep per example is our mean loss at 11.5 B / kilostep; decay 0.0153 B / kilostep
    # per step is lr x L2 coefficient
    assert cfg.lr == pytest.approx(11.5 * 512 / kilostep) and cfg.lr == pytest.approx(0.75)
    assert cfg.lr * cfg.weight_decay == pytest.approx(0.0153 * 512 / kilostep)
    assert speedrun_sgd(1024)["lr"] == pytest.approx(2 * cfg.lr)                   # the rate follows the batch
    assert speedrun_sgd(1024)["weight_decay"] == cfg.weight_decay
    # the model's own recipe, and flags over it
    assert TrainConfig(model="cifar_speedrun").resolved().recipe == "speedrun_cpu"
    cfg = TrainConfig(recipe="speedrun_cpu", epochs=2, lr=0.1, batch_size=64, augment="crop_flip",
                      lookahead_every=0, subset=100, test_subset=50).resolved()
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.augment, cfg.lookahead_every, cfg.subset) == \
        (2, 0.1, 64, "crop_flip", 0, 100)
    assert (cfg.momentum, cfg.whiten_bias_epochs) == (0.85, 3)
    # other recipes leave the speed run's options off
    plain = TrainConfig().resolved()
    assert plain.norm_bias_lr_scale is None and not SpeedrunTrainer.follows(plain)
    assert SpeedrunTrainer.follows(TrainConfig(recipe="speedrun_cpu").resolved())
    for name, bad in [("lookahead_every", -1), ("whitening_images", 2.5), ("whiten_bias_epochs", -3),
                      ("norm_bias_lr_scale", 0), ("alternating_flip", "yes")]:
        with pytest.raises(InputError, match=f"--{name.replace('_', '-')}: expected"):
            TrainConfig(recipe="speedrun_cpu", **{name: bad}).resolved()


def test_command_line_picks_the_speedrun_trainer_for_new_and_resumed_runs(cifar_dir, tmp_path):
    from tinyvision import cli
    from tinyvision.progressive import ProgressiveTrainer
    assert cli._trainer_class(TrainConfig(recipe="speedrun_cpu").resolved()) is SpeedrunTrainer
    assert cli._trainer_class(TrainConfig(recipe="resnet20_cpu_2h").resolved()) is ProgressiveTrainer
    assert cli._trainer_class(TrainConfig().resolved()) is Trainer
    out = tmp_path / "run"
    args = ["train", "--recipe", "speedrun_cpu", "--data", cifar_dir, "--out", str(out), "--batch-size", "20",
            "--subset", "4", "--test-subset", "2", "--lr", "0.05", "--no-progress"]
    for extra in (["--epochs", "1"], ["--resume", str(out), "--epochs", "2"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(args[:1] + extra if "--resume" in extra else args + extra)
        assert exit_.value.code == 0
        state = load(str(out / "last.tvz"))
        assert state["lookahead"]["step_count"] == 2 * state["epoch"]   # 2 steps an epoch, lookahead kept
    assert [row["epoch"] for row in state["history"]] == [1, 2] and "tta_test_acc" in state["history"][1]


def train_args(*flags):
    """(TrainConfig, lr note) of ``python -m tinyvision train FLAGS``, as the command builds it."""
    from tinyvision import cli
    return cli._train_config(cli.build_parser().parse_args(["train", *flags]))


def test_every_speedrun_option_is_a_train_flag():
    cfg, _ = train_args("--recipe", "speedrun_cpu", "--schedule", "triangle", "--augment", "translate2_flip",
                        "--norm-bias-lr-scale", "16", "--whitening-images", "0", "--whiten-bias-epochs", "2",
                        "--lookahead-every", "0", "--no-alternating-flip", "--model-arg", "identity_init=false",
                        "--model-arg", "width_mult=1.5", "--model-arg", "widths=[8, 16, 16]",
                        "--model-arg", "name=relu")
    got = cfg.resolved()
    assert (got.schedule, got.augment, got.norm_bias_lr_scale, got.whitening_images, got.whiten_bias_epochs,
            got.lookahead_every, got.alternating_flip) == ("triangle", "translate2_flip", 16.0, 0, 2, 0, False)
    assert got.model_kwargs == {"identity_init": False, "width_mult": 1.5, "widths": [8, 16, 16], "name": "relu"}
    assert train_args("--alternating-flip")[0].alternating_flip is True
    assert train_args("--model-arg", "k=1", "--model-arg", "k=2")[0].model_kwargs == {"k": 2}   # the last one
    unset = train_args("--recipe", "speedrun_cpu")[0]                   # no flag: the recipe's values
    assert unset.alternating_flip is None and unset.model_kwargs == {} and unset.resolved().alternating_flip


def test_batch_size_without_lr_keeps_the_recipes_rate_per_example():
    # lr = recipe_lr x B / recipe_B (speedrun_cpu: 0.75 at 512; resnet20_cpu_2h: 0.4 at 512; resnet_sgd 0.1 at 128)
    for flags, lr in [(["--recipe", "speedrun_cpu", "--batch-size", "256"], 0.375),
                      (["--recipe", "speedrun_cpu", "--batch-size", "1024"], 1.5),
                      (["--recipe", "resnet20_cpu_2h", "--batch-size", "128"], 0.1),
                      (["--batch-size", "512"], 0.4),
                      (["--model", "vit_cifar_tiny", "--batch-size", "64"], 5e-4)]:
        cfg, note = train_args(*flags)
        assert cfg.resolved().lr == pytest.approx(lr) and type(cfg.lr) is float, flags
        assert f"lr {lr:.4g}:" in note and f"--batch-size {flags[-1]}" in note, note
    for flags, lr in [(["--recipe", "speedrun_cpu", "--batch-size", "256", "--lr", "0.1"], 0.1),   # --lr wins
                      (["--recipe", "speedrun_cpu", "--batch-size", "512"], speedrun_sgd(512)["lr"]),
                      (["--recipe", "speedrun_cpu"], speedrun_sgd(512)["lr"])]:
        cfg, note = train_args(*flags)
        assert note is None and cfg.resolved().lr == pytest.approx(lr), flags
    assert TrainConfig(batch_size=512).resolved().lr == 0.1     # in Python, lr None is the recipe's as it is


def test_the_ablation_commands_of_the_docs_each_change_the_recipe_in_one_place():
    import os
    import re
    import shlex
    from tinyvision import cli
    from tinyvision.recipes import check_model_kwargs
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md")) as f:
        block = f.read().split("### Ablations")[1].split("```bash")[1].split("```")[0]
    base = shlex.split(re.search(r'R="python -m tinyvision (.*)"', block).group(1))
    recipe = dataclasses.asdict(TrainConfig(recipe="speedrun_cpu").resolved())
    commands = [shlex.split(line[2:].split("#")[0]) for line in block.splitlines() if line.startswith("$R")]
    assert len(commands) >= 10
    for flags in commands:
        cfg = cli._train_config(cli.build_parser().parse_args(base + flags))[0].resolved()
        check_model_kwargs(cfg.model, cfg.model_kwargs)
        changed = {k for k, v in dataclasses.asdict(cfg).items() if v != recipe[k]} - {"out", "data"}
        assert len(changed) <= 1 + ("--batch-size" in flags), (flags, changed)   # batch 256 moves the lr too
        assert cli._trainer_class(cfg) is SpeedrunTrainer


def test_the_command_says_once_that_it_scaled_the_lr(cifar_dir, tmp_path, monkeypatch, capsys):
    from tinyvision import cli

    def no_data(*args, **kwargs):
        raise FileNotFoundError("stop here")
    monkeypatch.setattr(cli, "_data", no_data)
    for flags, says in [(["--batch-size", "256"], True), (["--batch-size", "256", "--lr", "0.2"], False)]:
        with pytest.raises(SystemExit):
            cli.main(["train", "--recipe", "speedrun_cpu", "--out", str(tmp_path / "run"), *flags])
        out = capsys.readouterr().out
        assert out.count("lr 0.375: speedrun_cpu's 0.75 at batch 512, times 256/512") == says, out


def test_without_whitening_the_whitening_conv_is_learned(cifar_dir, tmp_path):
    # airbench's "no whitening" ablation: the 2x2 conv trains like any other layer, not a frozen random one
    trainer = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "off", epochs=1, whitening_images=0),
                              progress=False, log=None)
    weight = trainer.model.whiten.weight
    start = weight.numpy().copy()
    assert weight.requires_grad and any(p is weight for g in trainer.optimizer.param_groups for p in g["params"])
    trainer.fit()
    assert not np.array_equal(trainer.model.whiten.weight.numpy(), start)
    on = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "on", whitening_images=50), progress=False, log=None)
    assert not on.model.whiten.weight.requires_grad
    assert not any(p is on.model.whiten.weight for g in on.optimizer.param_groups for p in g["params"])


def test_triangular_schedule_rises_from_a_fifth_to_the_peak_at_23_percent_then_falls_to_7_percent():
    model = fresh(width_mult=0.125)
    cfg = SimpleNamespace(**{**vars(TrainConfig(recipe="speedrun_cpu").resolved()), "epochs": 5})
    opt = build_optimizer(model, cfg)
    norm_biases = [p for n, p in model.named_parameters() if ".norm" in n and n.endswith("bias")]
    assert [len(g["params"]) for g in opt.param_groups] == [len(list(p for p in model.parameters()
                                                                 if p.requires_grad)) - 6, 6]
    assert all(any(p is q for q in opt.param_groups[1]["params"]) for p in norm_biases)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([cfg.lr, 64 * cfg.lr])
    assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([cfg.weight_decay, cfg.weight_decay / 64])
    assert all(g["nesterov"] and g["momentum"] == 0.85 for g in opt.param_groups)
    sched = build_scheduler(opt, cfg, 20)                                     # 100 steps, the peak at step 23
    factors = np.array([lr / cfg.lr for lr in [sched.lr_at(t)[0] for t in range(101)]])
    np.testing.assert_allclose(factors[:24], 0.2 + 0.8 * np.arange(24) / 23, atol=1e-12)
    np.testing.assert_allclose(factors[23:], 1 - 0.93 * np.arange(78) / 77, atol=1e-12)
    assert sched.lr_at(50)[1] == pytest.approx(64 * sched.lr_at(50)[0])       # each group its own scale
    for _ in range(100):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.07 * cfg.lr, 0.07 * 64 * cfg.lr])
    # LinearLR alone is PyTorch's: a line from start to end factor, then flat
    line = optim.LinearLR(optim.SGD([tv.zeros(1, requires_grad=True)], lr=2.0), 0.5, 0.0, total_iters=4)
    assert [line.lr_at(t)[0] for t in range(6)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_one_cycle_keeps_the_batch_norm_biases_64x_rate():
    # the ablation --schedule onecycle changes the schedule only: each group peaks at its own rate
    model = fresh(width_mult=0.125)
    cfg = SimpleNamespace(**{**vars(TrainConfig(recipe="speedrun_cpu", schedule="onecycle").resolved()), "epochs": 2})
    sched = build_scheduler(build_optimizer(model, cfg), cfg, 50)
    peaks = np.max([sched.lr_at(t) for t in range(100)], axis=0)
    np.testing.assert_allclose(peaks, [cfg.lr, 64 * cfg.lr], rtol=0.01)


def test_random_crop_reflect_padding_mirrors_the_border():
    images = np.random.default_rng(0).integers(0, 256, (200, 6, 6, 3), dtype=np.uint8)
    out = data.RandomCrop(6, padding=2, padding_mode="reflect")(images, np.random.default_rng(1))
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    assert padded[0, 0, 2].tolist() == images[0, 2, 0].tolist()               # row -2 reads row 2
    moves = set()
    for n in range(len(images)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(out[n], padded[n, dy:dy + 6, dx:dx + 6])]
        assert found, n
        moves.add(found[0])
    assert len(moves) == 25                                                     # every shift up to 2 pixels
    assert "padding_mode='reflect'" in repr(data.RandomCrop(32, 2, "reflect"))
    with pytest.raises(ValueError, match="padding_mode"):
        data.RandomCrop(32, 2, "wrap")
    steps = build_transform("translate2_flip", (0, 0, 0), (1, 1, 1)).transforms
    assert repr(steps[0]) == "RandomCrop(32, padding=2, padding_mode='reflect')"
    assert isinstance(steps[1], data.RandomHorizontalFlip)
    steps = build_transform("translate2_flip", (0, 0, 0), (1, 1, 1), random_flip=False).transforms
    assert not any(isinstance(t, data.RandomHorizontalFlip) for t in steps)


def test_alternating_flips_mirror_the_other_images_each_epoch():
    dataset = SimpleNamespace(data=np.random.default_rng(0).integers(0, 256, (1000, 4, 4, 3), dtype=np.uint8),
                              targets=np.arange(1000) % 10, classes=list("abcdefghij"))
    flips = AlternatingFlips(dataset, seed=3)
    assert 0.45 < flips.flips(0).mean() < 0.55                                  # a random half first
    for epoch in range(4):
        np.testing.assert_array_equal(flips.flips(epoch) ^ flips.flips(epoch + 1), True)
        flips.set_epoch(epoch)
        mirrored = flips.flips(epoch)
        np.testing.assert_array_equal(flips.data[mirrored], dataset.data[mirrored][:, :, ::-1])
        np.testing.assert_array_equal(flips.data[~mirrored], dataset.data[~mirrored])
    np.testing.assert_array_equal(AlternatingFlips(dataset, seed=3).flips(5), flips.flips(5))  # from seed, epoch
    assert not np.array_equal(AlternatingFlips(dataset, seed=4).flips(0), flips.flips(0))
    assert flips[7][1] == 7 and len(flips) == 1000


def test_the_loop_trains_on_alternating_flips(cifar_dir, tmp_path, monkeypatch):
    """Epochs 0 and 1 together show every training image once as it is and once mirrored."""
    trainer = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "run", augment="flip", lookahead_every=0),
                              progress=False, log=None)
    seen = []
    original = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, x, y: seen.append((self.epoch, x.numpy())) or
                        original(self, x, y))
    trainer.fit()
    images = trainer.train_set.data
    to_input = trainer.test_loader.transform                                   # normalised, no augmentation
    plain, mirrored = to_input(images), to_input(images[:, :, ::-1])
    for epoch in (0, 1):
        batches = np.concatenate([x for e, x in seen if e == epoch])
        assert len(batches) == len(images)
        index = {x.tobytes(): i for i, x in enumerate(plain)}
        flipped = [index.get(x.tobytes()) is None for x in batches]
        which = [index[x.tobytes()] if not f else
                 next(i for i, m in enumerate(mirrored) if np.array_equal(m, x)) for x, f in zip(batches, flipped)]
        assert sorted(which) == list(range(len(images)))
        pattern = np.zeros(len(images), bool)
        pattern[which] = flipped
        np.testing.assert_array_equal(pattern, trainer.flips.flips(epoch))


def test_whitening_is_set_from_the_training_images_before_the_first_step(cifar_dir, tmp_path, monkeypatch):
    cfg = speedrun_config(cifar_dir, tmp_path / "run", epochs=1, whitening_images=60)
    trainer = SpeedrunTrainer(cfg, progress=False, log=None)
    at_first_step = {}
    original = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, x, y: at_first_step.setdefault(
        "w", self.model.whiten.weight.numpy().copy()) is None or original(self, x, y))
    trainer.fit()
    pick = np.sort(np.random.default_rng([0, WHITENING_STREAM]).choice(200, 60, replace=False))
    expected = fresh(width_mult=0.125)
    init_whitening(expected, trainer.test_loader.transform(trainer.train_set.data[pick]))
    np.testing.assert_array_equal(at_first_step["w"], expected.whiten.weight.numpy())
    np.testing.assert_array_equal(trainer.model.whiten.weight.numpy(), expected.whiten.weight.numpy())  # frozen
    assert len(trainer.whitening_eigenvalues) == 12
    # without: the random initialisation stays
    off = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "off", whitening_images=0), progress=False, log=None)
    np.testing.assert_array_equal(off.model.whiten.weight.numpy(), fresh(width_mult=0.125).whiten.weight.numpy())
    with pytest.raises(ValueError, match="resnet20 has no whitening conv"):
        SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "r", model="resnet20", model_kwargs={}),
                        progress=False, log=None)


def test_the_whitening_bias_trains_3_epochs_then_is_frozen(cifar_dir, tmp_path, monkeypatch):
    trainer = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "run", epochs=5, lookahead_every=0),
                              progress=False, log=None)
    after_epoch = []
    original = SpeedrunTrainer.train_one_epoch

    def record(self):
        row = original(self)
        after_epoch.append((self.model.whiten.bias.numpy().copy(), self.model.head.weight.numpy().copy(),
                            self.model.whiten.bias.requires_grad))
        return row

    monkeypatch.setattr(SpeedrunTrainer, "train_one_epoch", record)
    start = trainer.model.whiten.bias.numpy().copy()
    trainer.fit()
    biases = [start] + [b for b, _, _ in after_epoch]
    assert all(not np.array_equal(biases[e], biases[e + 1]) for e in range(3))     # epochs 1-3 train it
    np.testing.assert_array_equal(biases[3], biases[4])
    np.testing.assert_array_equal(biases[4], biases[5])
    assert [trains for _, _, trains in after_epoch] == [True, True, True, False, False]
    assert not np.array_equal(after_epoch[3][1], after_epoch[4][1])                 # the rest trains on


def test_lookahead_runs_in_the_loop_and_the_run_ends_on_the_slow_weights(cifar_dir, tmp_path, monkeypatch):
    trainer = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "run"), progress=False, log=None)
    syncs = []
    original = optim.Lookahead.sync
    monkeypatch.setattr(optim.Lookahead, "sync", lambda self, alpha: syncs.append((self.step_count, alpha)) or
                        original(self, alpha))
    trainer.fit()
    total = 16                                                            # 2 epochs of 8 steps
    assert syncs == [(5, lookahead_alpha(5, total)), (10, lookahead_alpha(10, total)),
                     (15, lookahead_alpha(15, total)), (16, 0.0)]
    assert lookahead_alpha(0, total) == 1.0 and lookahead_alpha(total, total) == pytest.approx(1 - 0.95 ** 5)
    slow = trainer.lookahead.slow
    state = trainer.model.state_dict()
    for name in slow:
        np.testing.assert_array_equal(state[name], slow[name], err_msg=name)
    saved = load(str(tmp_path / "run" / "last.tvz"))
    assert saved["lookahead"]["step_count"] == total
    np.testing.assert_array_equal(saved["model"]["head.weight"], saved["lookahead"]["slow"]["head.weight"])


def test_resume_after_interruption_is_exact(cifar_dir, tmp_path, monkeypatch):
    """Whitening, alternating flips, freezing after epoch 1, lookahead every 3 steps: stopped in
    epoch 2 and resumed, the run ends on the uninterrupted run's weights, bit for bit."""
    kw = dict(epochs=3, whiten_bias_epochs=1, lookahead_every=3, whitening_images=50)
    straight = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "a", **kw), progress=False, log=None)
    straight.fit()
    interrupted = SpeedrunTrainer(speedrun_config(cifar_dir, tmp_path / "b", **kw), progress=False, log=None)
    resumed = interrupt_and_resume(interrupted, monkeypatch, at_call=11)
    assert type(resumed) is SpeedrunTrainer and (resumed.epoch, resumed.step_in_epoch) == (1, 3)
    assert resumed.lookahead.step_count == 11
    resumed.fit()
    assert_same_weights(straight, resumed)
    for name, slow in straight.lookahead.slow.items():
        np.testing.assert_array_equal(resumed.lookahead.slow[name], slow, err_msg=name)
    assert resumed.history[-1]["train_loss"] == straight.history[-1]["train_loss"]
