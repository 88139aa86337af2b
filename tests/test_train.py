"""End to end: train a tiny model for a few steps on a generated CIFAR-format fixture; the loss
falls, a resumed run continues exactly where it stopped, and eval, predict and plot work."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from cifar_fixture import write_cifar_batches
from tinyvision.serialization import load
from tinyvision.progressive import ProgressiveTrainer
from tinyvision.train import Trainer, TrainConfig

@pytest.fixture
def cifar_dir(tmp_path):
    return write_cifar_batches(str(tmp_path / "data"))


def config(cifar_dir, out, **kw):
    base = dict(model="vit_cifar_tiny", data=cifar_dir, out=str(out), epochs=2, batch_size=25,
                lr=3e-3, warmup_epochs=0, prefetch=0, eval_batch_size=50, log_interval=2)
    base.update(kw)
    return TrainConfig(**base)


def test_training_loss_falls_and_writes_the_run(cifar_dir, tmp_path):
    lines = []
    trainer = Trainer(config(cifar_dir, tmp_path / "run", epochs=3), progress=False, log=lines.append)
    history = trainer.fit()
    # without the progress bar, each epoch still leaves one line in the log
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert len(history) == 3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for name in ("metrics.csv", "history.json", "config.json", "last.tvz", "best.tvz"):
        assert os.path.exists(tmp_path / "run" / name), name
    assert all(np.isfinite(h["test_acc"]) for h in history)
    assert trainer.summary().startswith("done: 3 epochs, best test accuracy")
    idle = Trainer(config(cifar_dir, tmp_path / "idle", epochs=0), progress=False, log=lines.append)
    assert idle.fit() == [] and idle.summary().startswith("done: no epochs trained (epochs=0)")


def test_eval_every_tests_those_epochs_and_the_last(cifar_dir, tmp_path):
    from tinyvision.plots import plot_learning_curves, read_metrics
    lines = []
    trainer = Trainer(config(cifar_dir, tmp_path / "run", epochs=3, eval_every=2), progress=False, log=lines.append)
    history = trainer.fit()
    assert [h["test_acc"] is not None for h in history] == [False, True, True]
    assert "test every 2 epochs" in lines[0] and "test loss" in lines[1] and "test loss" in lines[2]
    rows = read_metrics(str(tmp_path / "run"))  # the skipped epoch's test fields are empty in the CSV
    assert ["test_acc" in r for r in rows] == [False, True, True]
    assert trainer.best_acc == max(history[1]["test_acc"], history[2]["test_acc"])
    fig = plot_learning_curves(str(tmp_path / "run"))
    test_curve = fig.axes[1].lines[1]
    assert len(test_curve.get_xdata()) == 2  # the test curve has the two tested epochs
    assert test_curve.get_marker() == "o"  # each measured, so a reader sees where the gaps are
    with pytest.raises(ValueError, match="eval.every: expected an integer >= 1, got 0"):
        Trainer(config(cifar_dir, tmp_path / "bad", eval_every=0), progress=False)


def test_translate_moves_the_image_and_fills_the_border():
    from tinyvision.evaluate import translate
    a = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    fill = np.array([-1.0, -2.0], np.float32).reshape(2, 1, 1)
    out = translate(a, 1, -2, fill)  # one pixel down, two left
    expected = np.empty_like(a)
    expected[0, 0], expected[0, 1] = -1.0, -2.0
    expected[:, :, 1:, :2] = a[:, :, :2, 2:]
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="cannot move a 3x4 image by"):
        translate(a, 3, 0, fill)
    # reflected borders: row -1 reads row 1, as RandomCrop(padding_mode="reflect") pads
    out = translate(a, 1, -2, "reflect")
    expected = np.pad(a, ((0, 0), (0, 0), (1, 1), (2, 2)), mode="reflect")[:, :, 0:3, 4:8]
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0, 0, 0] == a[0, 0, 1, 2] and out[0, 0, 1, 3] == a[0, 0, 0, 1]   # mirrored row, moved content
    with pytest.raises(ValueError, match="fill: expected per-channel values or 'reflect', got 'wrap'"):
        translate(a, 1, 0, "wrap")


def test_tta_border_follows_the_training_crops_padding():
    from tinyvision.evaluate import tta_border
    assert tta_border("translate2_flip") == "reflect"          # RandomCrop(padding_mode="reflect")
    assert [tta_border(a) for a in ("crop_flip", "crop_flip_cutout", "flip", "none", None)] == ["black"] * 5


def test_tta_averages_the_shifted_and_mirrored_views(cifar_dir):
    """predict_logits' views, rebuilt the way training augments: shift the raw images with
    black (zero) padding, as RandomCrop does, then normalise; mirror; average the logits."""
    import tinyvision as tv
    from tinyvision import data
    from tinyvision.evaluate import predict_logits
    from tinyvision.recipes import build_transform
    model = tv.models.create("resnet20")
    test_set = data.CIFAR10(cifar_dir, train=False)
    images, labels = test_set.data[:6], np.asarray(test_set.targets[:6])
    norm = build_transform("none", model.default_cfg["mean"], model.default_cfg["std"])
    model.eval()
    views = []
    for dy, dx in [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]:
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
        moved = padded[:, 2 - dy:34 - dy, 2 - dx:34 - dx]  # content moves dy down, dx right
        views += [moved, moved[:, :, ::-1]]
    with tv.no_grad():
        expected = np.mean([model(tv.tensor(norm(v))).data for v in views], axis=0)
    loader = [(tv.tensor(norm(images)), tv.tensor(labels))]
    logits, targets = predict_logits(model.train(), loader, tta_flip=True, tta_shift=2)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(targets, labels)
    assert model.training  # restored
    plain, _ = predict_logits(model, loader)
    assert not np.allclose(plain, logits, atol=1e-3)  # the views do change the answer
    # reflected borders: the same views cut from reflect-padded images
    reflected = []
    for dy, dx in [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]:
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
        reflected.append(padded[:, 2 - dy:34 - dy, 2 - dx:34 - dx])
    model.eval()
    with tv.no_grad():
        expected = np.mean([model(tv.tensor(norm(v))).data for v in reflected], axis=0)
    logits, _ = predict_logits(model, loader, tta_shift=2, border="reflect")
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="border: expected 'black' or 'reflect', got 'zeros'"):
        predict_logits(model, loader, tta_shift=2, border="zeros")
    with pytest.raises(ValueError, match="tta_shift: expected a whole number of pixels >= 0, got -1"):
        predict_logits(model, loader, tta_shift=-1)
    with pytest.raises(ValueError, match="tta.shift"):  # a training run refuses it before it starts
        TrainConfig(model="resnet20", tta_shift=1.5).resolved()


def interrupt_and_resume(trainer, monkeypatch, at_call):
    """Send Ctrl-C (SIGINT) during the ``at_call``-th training step of ``trainer.fit()``, then
    rebuild the trainer from its run folder as ``--resume`` does."""
    calls = {"n": 0}
    original = Trainer.train_step

    def flaky(self, x, y):
        calls["n"] += 1
        if calls["n"] == at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.setattr(Trainer, "train_step", original)
    return type(trainer).resume(trainer.cfg.out, progress=False)


def assert_same_weights(a, b):
    expected, got = a.model.state_dict(), b.model.state_dict()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)


def test_resume_after_interruption_is_exact(cifar_dir, tmp_path, monkeypatch):
    straight = Trainer(config(cifar_dir, tmp_path / "a", model="resnet20", lr=0.05), progress=False)
    straight.fit()
    interrupted = Trainer(config(cifar_dir, tmp_path / "b", model="resnet20", lr=0.05), progress=False)
    # Ctrl-C arrives during epoch 2's third step (8 steps per epoch)
    resumed = interrupt_and_resume(interrupted, monkeypatch, at_call=11)
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 3)   # the step in flight was finished
    resumed.fit()
    assert_same_weights(straight, resumed)
    assert len(resumed.history) == 2


def test_progressive_resizing_trains_crops_then_whole_images(cifar_dir, tmp_path, monkeypatch):
    """progressive=[[16, 1], [24, 2]] over 3 epochs: 16-pixel crops in epoch 1, 24-pixel ones in
    epoch 2, the whole 32-pixel images in epoch 3, with prefetching on (the transform must be
    chosen before the prefetcher starts an epoch); interrupted in a crop epoch, a run resumes
    with that epoch's crops and ends exactly where the straight run does."""
    from tinyvision.plots import read_metrics
    sizes, original = [], Trainer.train_step

    def record(self, x, y):
        sizes.append((self.epoch, x.shape[2], x.shape[3]))
        return original(self, x, y)

    kw = dict(model="resnet20", lr=0.05, epochs=3, prefetch=2, progressive=[[16, 1], [24, 2]])
    lines = []
    monkeypatch.setattr(Trainer, "train_step", record)
    straight = ProgressiveTrainer(config(cifar_dir, tmp_path / "a", **kw), progress=False, log=lines.append)
    straight.fit()
    assert sizes == [(0, 16, 16)] * 8 + [(1, 24, 24)] * 8 + [(2, 32, 32)] * 8
    assert [row["train_size"] for row in read_metrics(str(tmp_path / "a"))] == [16, 24, 32]
    assert [line.split(" | ")[2].split(" at ")[1] for line in lines] == ["16px", "24px", "32px"]

    interrupted = ProgressiveTrainer(config(cifar_dir, tmp_path / "b", **kw), progress=False)
    resumed = interrupt_and_resume(interrupted, monkeypatch, at_call=11)  # epoch 2, step 3
    monkeypatch.setattr(Trainer, "train_step", record)
    sizes.clear()
    resumed.fit()
    assert sizes[:5] == [(1, 24, 24)] * 5 and sizes[5:] == [(2, 32, 32)] * 8
    assert_same_weights(straight, resumed)


def test_crop_epochs_are_tested_after_recalibrating_batch_norm(cifar_dir, tmp_path, monkeypatch):
    """Before a crop epoch's test, batch norm's running statistics are re-estimated on whole
    training images (bn_recalibration of them); whole-image epochs are tested as they are, and
    the weights train exactly as without it (training mode uses batch statistics)."""
    from tinyvision.nn import utils
    calls, original = [], utils.update_bn

    def record(loader, model, max_images=None):
        sizes = []

        def batches():
            for x, y in loader:
                sizes.append(x.shape[1:])
                yield x, y
        seen = original(batches(), model, max_images)
        calls.append((trainer.epoch, max_images, seen, set(sizes)))
        return seen

    monkeypatch.setattr(utils, "update_bn", record)
    kw = dict(model="resnet20", lr=0.05, epochs=3, progressive=[[16, 1], [24, 2]])
    trainer = ProgressiveTrainer(config(cifar_dir, tmp_path / "a", bn_recalibration=60, **kw), progress=False)
    trainer.fit()
    assert calls == [(0, 60, 100, {(3, 32, 32)}), (1, 60, 100, {(3, 32, 32)})]  # batches of 50
    calls.clear()
    plain = ProgressiveTrainer(config(cifar_dir, tmp_path / "b", bn_recalibration=0, **kw), progress=False)
    plain.fit()
    assert calls == []
    params = dict(plain.model.named_parameters())
    for name, p in trainer.model.named_parameters():
        np.testing.assert_array_equal(p.numpy(), params[name].numpy(), err_msg=name)
    with pytest.raises(ValueError, match="bn.recalibration"):
        TrainConfig(model="resnet20", bn_recalibration=-1).resolved()


def test_progressive_phases_are_checked_before_training(cifar_dir, tmp_path):
    from tinyvision.cli import build_parser
    for phases, message in [([[24, 3]], "must end on whole images"), ([[20, 2], [24, 1]], "rising epochs"),
                            ([[24, 1], [28, 1]], "rising epochs"), ([[0, 1]], "positive crop sizes"),
                            ([[24]], "pairs")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(model="resnet20", epochs=3, progressive=phases).resolved()
    with pytest.raises(ValueError, match="smaller than the 32-pixel training images, got \\[32\\]"):
        ProgressiveTrainer(config(cifar_dir, tmp_path / "big", progressive=[[32, 1]]), progress=False)
    # a ViT's position embeddings fix its input size: refused before training starts
    with pytest.raises(ValueError, match="vit_cifar_tiny cannot train on 24px crops .*PatchEmbed expected"):
        ProgressiveTrainer(config(cifar_dir, tmp_path / "vit", progressive=[[24, 1]]), progress=False)
    args = build_parser().parse_args(["train", "--progressive", "20:6,24:16", "--bn-recalibration", "0"])
    assert args.progressive == [[20, 6], [24, 16]] and args.bn_recalibration == 0
    for text in ("24", "24:x", "24:1:2"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "--progressive", text])



def test_cli_train_reports_a_bad_setup_in_one_line(cifar_dir, tmp_path, capsys):
    # errors found while the run is set up (options, data) end the command with status 2 and
    # the message, not a traceback; errors during training keep theirs
    from tinyvision import cli
    cases = [(["--data", cifar_dir, "--model", "vit_cifar_tiny", "--epochs", "2", "--progressive", "24:1"],
              "progressive: vit_cifar_tiny cannot train on 24px crops"),
             (["--data", str(tmp_path / "nowhere")], "nowhere"),
             (["--resume", str(tmp_path / "no_run")], "no checkpoint to resume")]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["train", "--out", str(tmp_path / "run"), *args])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err
        assert err.startswith("python -m tinyvision train: error: ") and message in err, err


def test_progressive_crop_windows_come_from_the_unpadded_image():
    # crop=24 replaces the padded 32-pixel crop: every training image is a 24 x 24 window of
    # its source (or that window mirrored), never a window reaching into padding
    from tinyvision.recipes import build_transform
    images = np.random.default_rng(0).integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)
    out = build_transform("crop_flip", (0, 0, 0), (1, 1, 1), crop=24)(images, np.random.default_rng(1))
    assert out.shape == (16, 3, 24, 24)
    windows = np.lib.stride_tricks.sliding_window_view(images, (24, 24), axis=(1, 2))  # (N, 9, 9, C, 24, 24)
    for n in range(16):
        crop = np.rint(out[n] * 255).astype(np.uint8)
        found = [(crop == w).all() or (crop[:, :, ::-1] == w).all()
                 for w in windows[n].reshape(-1, 3, 24, 24)]
        assert any(found), n


def test_every_loop_takes_its_steps_through_train_step(cifar_dir, tmp_path, monkeypatch):
    """Trainer, the detection and segmentation loop (tasks.loop) and the chapters' fit run one
    step function, train.train_step; only the objective (and clipping) they hand it differs."""
    from scene_fixture import tiny_scenes
    from tinyvision import train
    from tinyvision.tasks import loop
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chapters"))
    import _common
    assert loop.train_step is train.train_step and _common.train_step is train.train_step
    calls, real = [], train.train_step

    def spy(model, optimizer, objective, x, y, clip_grad=0.0, scheduler=None):
        calls.append((objective, clip_grad))
        return real(model, optimizer, objective, x, y, clip_grad, scheduler)
    for module in (train, loop, _common):
        monkeypatch.setattr(module, "train_step", spy)

    trainer = Trainer(config(cifar_dir, tmp_path / "run", epochs=1), progress=False, log=None)
    trainer.fit()
    assert calls == [(trainer.compute_loss, 1.0)] * 8   # 200 images in batches of 25; the ViT recipe clips at 1
    calls.clear()
    cfg = loop.TaskConfig(task="segment", backbone="resnet", epochs=1, batch_size=2, out=str(tmp_path / "task"),
                          model_kwargs=dict(widths=(8, 16, 16), blocks=(1, 1, 1), width=16))
    model, _ = loop.fit(cfg, tiny_scenes(4), tiny_scenes(2, seed=1), progress=False, log=lambda line: None)
    assert calls == [(model.loss, 5.0)] * 2
    calls.clear()
    monkeypatch.setenv("TINYVISION_SYNTHETIC", "1")
    split = _common.load_data(train_per_class=4, test_per_class=2)
    _common.fit(_common.cifar_resnet(8, widths=(4, 8, 8)), split, epochs=1, batch_size=8, verbose=False)
    assert len(calls) == 5 and {clip for _, clip in calls} == {0.0}


def test_a_plain_trainer_refuses_crop_phases_and_the_command_line_picks_the_progressive_one(cifar_dir, tmp_path,
                                                                                           capsys):
    with pytest.raises(ValueError, match=r"progressive \(tinyvision.progressive.ProgressiveTrainer\): set, but "
                                         "Trainer does not follow it"):
        Trainer(config(cifar_dir, tmp_path / "a", model="resnet20", epochs=3, progressive=[[24, 1]]), progress=False)
    assert not (tmp_path / "a").exists()   # refused before the run folder is claimed
    from tinyvision.progressive import ProgressiveTrainer   # and a speedrun option, by the wrong subclass
    with pytest.raises(ValueError, match=r"lookahead_every \(tinyvision.speedrun.SpeedrunTrainer\): set, but "
                                         "ProgressiveTrainer does not follow it"):
        ProgressiveTrainer(config(cifar_dir, tmp_path / "a", model="resnet20", epochs=3, lookahead_every=5),
                           progress=False)
    # the recipe resnet20_cpu_2h sets progressive=[[24, 18]]: the command line trains it with
    # ProgressiveTrainer, whose check of the crop size is what refuses a ViT here
    from tinyvision import cli
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--recipe", "resnet20_cpu_2h", "--model", "vit_cifar_tiny", "--batch-size", "25",
                  "--data", cifar_dir, "--out", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "vit_cifar_tiny cannot train on 24px crops" in capsys.readouterr().err


def test_resume_refuses_weights_of_another_model_in_one_line(cifar_dir, tmp_path):
    from tinyvision import errors, serialization
    run = tmp_path / "run"
    trainer = Trainer(config(cifar_dir, run, epochs=1), progress=False, log=None)
    trainer.save_checkpoint("last.tvz")
    trainer.close()
    state = serialization.load(str(run / "last.tvz"))
    state["model"]["head.weight"] = np.zeros((7, 3), np.float32)
    serialization.save(state, str(run / "last.tvz"))
    with pytest.raises(errors.CheckpointError) as err:
        Trainer.resume(str(run), progress=False, log=None)
    assert str(err.value).startswith(f"{run / 'last.tvz'} does not fit a vit_cifar_tiny")
    assert "\n" not in str(err.value) and "head.weight: file has (7, 3)" in str(err.value)
    assert not (run / ".lock").exists()


def test_nan_loss_stops_with_a_clear_error(cifar_dir, tmp_path):
    trainer = Trainer(config(cifar_dir, tmp_path / "nan", lr=1e6, clip_grad=0.0, label_smoothing=0.0),
                      progress=False)
    with pytest.raises(FloatingPointError, match="lower --lr"):
        trainer.fit()


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinyvision", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_train_eval_predict_plot(cifar_dir, tmp_path):
    out = tmp_path / "cli_run"
    r = run_cli("train", "--model", "vit_cifar_tiny", "--data", cifar_dir, "--epochs", "2", "--eval-every", "3",
                "--batch-size", "25", "--out", str(out), "--no-progress", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "epoch 1: train loss" in r.stdout and "test every 3 epochs" in r.stdout  # only the last is tested
    assert "best test accuracy" in r.stdout
    r = run_cli("eval", str(out / "best.tvz"), "--data", cifar_dir, "--tta-flip", "--tta-shift", "2", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "airplane" in r.stdout
    assert (out / "confusion_matrix.png").exists()
    with open(out / "eval.json") as f:
        assert json.load(f)["tta"] == {"flip": True, "shift": 2}
    from PIL import Image
    img = tmp_path / "img.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(img)
    r = run_cli("predict", str(out / "best.tvz"), str(img), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert str(img) in r.stdout and r.stdout.count(",") >= 4  # top-5 with class names
    r = run_cli("plot", str(out), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (out / "learning_curves.png").exists()


def test_cli_eval_report_is_written_atomically(cifar_dir, tmp_path, monkeypatch):
    # A failure halfway through writing eval.json (a full disk) must leave the previous report
    # whole and no temporary file behind.
    from tinyvision import cli, fileio
    run = tmp_path / "run"
    Trainer(config(cifar_dir, run, epochs=1), progress=False, log=lambda line: None).fit()
    (run / "eval.json").write_text('{"accuracy": "earlier report"}')

    def dump_then_fail(obj, f, **kw):
        f.write('{"accura')
        raise OSError("No space left on device")
    monkeypatch.setattr(fileio.json, "dump", dump_then_fail)
    with pytest.raises(SystemExit) as exit_:  # one line and status 1 (cli's error handler)
        cli.main(["eval", str(run / "best.tvz"), "--data", cifar_dir])
    assert exit_.value.code == 1
    assert json.loads((run / "eval.json").read_text()) == {"accuracy": "earlier report"}
    assert not [name for name in os.listdir(run) if "tmp" in name]


def test_cli_help_for_every_command(tmp_path):
    for cmd in ("train", "eval", "predict", "plot", "models"):
        r = run_cli(cmd, "--help", cwd=str(tmp_path))
        assert r.returncode == 0 and "usage" in r.stdout, (cmd, r.stderr)


def test_a_second_ctrl_c_mid_step_stops_without_saving(cifar_dir, tmp_path, capsys):
    """Both Ctrl-Cs arrive inside optimizer.step, after it has updated some parameters: the
    run stops at once, and last.tvz stays the one saved after epoch 1 (a checkpoint is only
    ever taken between steps)."""
    import signal as signal_
    trainer = Trainer(config(cifar_dir, tmp_path / "run", model="resnet20", lr=0.05), progress=False,
                      log=lambda line: None)
    step, calls = trainer.optimizer.step, {"n": 0}

    def step_interrupted_twice():
        calls["n"] += 1
        if calls["n"] == 11:   # epoch 2, step 3
            first = trainer.optimizer.param_groups[0]["params"][0]
            first.data -= 1.0   # half an update applied
            handler = signal_.getsignal(signal_.SIGINT)
            handler(signal_.SIGINT, None)   # the first Ctrl-C: a flag
            handler(signal_.SIGINT, None)   # the second: stops here
        step()

    trainer.optimizer.step = step_interrupted_twice
    last = tmp_path / "run" / "last.tvz"
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    state = load(str(last))
    assert (int(state["epoch"]), int(state["step_in_epoch"])) == (1, 0)
    out = capsys.readouterr().out
    assert f"stopped at once, without saving; the last checkpoint, {last}, is from the end of epoch 1" in out
    assert "saved" not in out.replace("without saving", "")
    assert not (tmp_path / "run" / ".lock").exists()


def test_named_recipe_sets_the_model_and_the_run_and_flags_override_it():
    from tinyvision.recipes import RECIPES
    cfg = TrainConfig(recipe="resnet20_cpu_2h").resolved()
    expected = dict(model="resnet20", epochs=30, progressive=[[24, 18]], eval_every=6, batch_size=512, lr=0.4,
                    label_smoothing=0.1, optimizer="sgd", nesterov=True, momentum=0.9, weight_decay=5e-4,
                    schedule="onecycle", augment="crop_flip", final_tta=[True, 2])
    assert {k: getattr(cfg, k) for k in expected} == expected
    cfg = TrainConfig(recipe="resnet20_cpu_2h", epochs=10, lr=0.2, progressive=[[24, 4]], model="resnet56").resolved()
    assert (cfg.epochs, cfg.lr, cfg.progressive, cfg.model, cfg.batch_size) == (10, 0.2, [[24, 4]], "resnet56", 512)
    # without a recipe: the model's own, which sets neither the progressive phases nor a final TTA
    plain = TrainConfig().resolved()
    assert (plain.model, plain.recipe, plain.epochs, plain.eval_every) == ("resnet20", "resnet_sgd", 20, 1)
    assert plain.progressive == [] and plain.final_tta is None
    vit = TrainConfig(model="vit_cifar_tiny").resolved()
    assert (vit.recipe, vit.optimizer, vit.lr) == ("vit_adamw", "adamw", RECIPES["vit_adamw"]["lr"])
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        TrainConfig(recipe="fast").resolved()


def test_final_tta_tests_the_last_epoch_once_more(cifar_dir, tmp_path):
    from tinyvision import data
    from tinyvision.plots import read_metrics
    from tinyvision.evaluate import predict_logits
    from tinyvision.recipes import build_transform
    lines = []
    trainer = Trainer(config(cifar_dir, tmp_path / "run", model="resnet20", lr=0.05, final_tta=[True, 2]),
                      progress=False, log=lines.append)
    history = trainer.fit()
    assert "tta_test_acc" not in history[0] and "tta_test_acc" in history[1]
    model = trainer.model
    loader = data.DataLoader(data.CIFAR10(cifar_dir, train=False), batch_size=50,
                             transform=build_transform("none", model.default_cfg["mean"], model.default_cfg["std"]))
    logits, targets = predict_logits(model, loader, tta_flip=True, tta_shift=2)
    assert history[1]["tta_test_acc"] == pytest.approx(float((logits.argmax(1) == targets).mean()))
    assert f"({history[1]['tta_test_acc']:.4f} with flip + shift 2 TTA)" in lines[1]
    assert "after the last epoch with flip + shift 2 TTA" in trainer.summary()
    assert read_metrics(str(tmp_path / "run"))[1]["tta_test_acc"] == pytest.approx(history[1]["tta_test_acc"])
