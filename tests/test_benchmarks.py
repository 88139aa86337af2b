"""The benchmark scripts run and report what the README's performance table is built from."""
import json
import os
import sys

import numpy as np
import pytest

import tinyvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import micro  # noqa: E402
import perf_table  # noqa: E402
import speedrun_results  # noqa: E402
import train_step  # noqa: E402


def test_perf_table_measures_training_and_inference(tmp_path, capsys):
    out = tmp_path / "perf.json"
    perf_table.main(["--models", "resnet20", "--steps", "1", "--batch-size", "4", "--no-torch", "--json", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert [(r["model"], r["mode"]) for r in results] == [("resnet20", "training"), ("resnet20", "inference")]
    for r in results:
        assert r["images_per_s"] > 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0
        assert "ratio" not in r
    assert "| resnet20 | training |" in printed and "| resnet20 | inference |" in printed


def test_vs_torch_ratio_where_pytorch_is_installed(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is an optional reference, not a dependency")
    r = perf_table.run("resnet20", False, 1, 4, torch=True)
    assert r["ratio"] == pytest.approx(r["images_per_s"] / r["torch_images_per_s"])
    lo, hi = r["ratio_quartiles"]
    assert 0 < lo <= hi


def test_alternate_times_pairs_in_a_random_order():
    calls = []
    a, b = train_step.alternate(lambda: calls.append("a"), lambda: calls.append("b"), 20, seed=3)
    assert len(a) == len(b) == 20 and all(t >= 0 for t in a + b)
    pairs = [tuple(calls[i:i + 2]) for i in range(0, 40, 2)]
    assert set(pairs) == {("a", "b"), ("b", "a")}  # both orders occur, always one of each
    calls.clear()
    train_step.alternate(lambda: calls.append("a"), lambda: calls.append("b"), 20, seed=3)
    assert [tuple(calls[i:i + 2]) for i in range(0, 40, 2)] == pairs  # seeded


def test_micro_gives_tinyvision_channel_major_activations():
    # the layout tinyvision's layers pass each other: same values, (C, N, H, W) in memory
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    cm = micro.channel_major(a)
    assert np.array_equal(cm, a) and not cm.flags.c_contiguous
    assert cm.transpose(1, 0, 2, 3).flags.c_contiguous
    w = np.ones((3, 4), dtype=np.float32)
    assert micro.channel_major(w) is w


def test_train_step_times_cifar_speedrun_and_its_pytorch_twin():
    # the speed-run net at its own default batch (512), here a tiny smoke run at batch 2
    assert train_step.default_batch("cifar_speedrun") == 512 and train_step.default_batch("resnet20") == 128
    r = train_step.measure("cifar_speedrun", batch_size=2, steps=1, warmup=1)
    assert r["batch_size"] == 2 and r["images_per_s"] > 0
    torch = pytest.importorskip("torch", reason="PyTorch is an optional reference, not a dependency")
    import torch_reference
    twin = torch_reference.build("cifar_speedrun")
    model = tinyvision.models.create("cifar_speedrun")
    # the same parameters, 1,972,792 in all and 1,440 of them frozen
    assert [(sum(p.numel() for p in twin.parameters()), sum(p.numel() for p in twin.parameters() if p.requires_grad))]\
        == [(sum(p.size for p in model.parameters()), sum(p.size for p in model.parameters() if p.requires_grad))]\
        == [(1972792, 1972792 - 1440)]
    assert twin(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def fake_run(path, seed, epoch_times, accs):
    """A run folder as ``train`` leaves it: config.json and metrics.csv (TTA after the last epoch)."""
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"seed": seed, "model": "cifar_speedrun"}, f)
    with open(os.path.join(path, "metrics.csv"), "w") as f:
        f.write("epoch,train_loss,train_acc,test_loss,test_acc,epoch_time,images_per_s,wall_time,tta_test_acc\n")
        wall = 0.0
        for e, (t, acc) in enumerate(zip(epoch_times, accs), 1):
            wall += t + 10
            last = e == len(accs)
            f.write(f"{e},1.0,0.5,{'0.4' if last else ''},{acc if last else ''},{t},200,{wall},"
                    f"{acc + 0.01 if last else ''}\n")


def test_speedrun_results_collects_seeds_and_ablations(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / f"seed{seed}", seed, [600.0, 660.0], [0.8, 0.9 + seed / 100])
    fake_run(tmp_path / "full", 0, [120.0], [0.85])
    fake_run(tmp_path / "nowhite", 0, [120.0], [0.80])
    out = tmp_path / "results"
    os.makedirs(out)
    speedrun_results.main(["--runs", str(tmp_path / "seed0"), str(tmp_path / "seed1"), "--date", "2026-12-08",
                           "--blas", "OpenBLAS", "--results", str(out),
                           "--ablation", f"the recipe||{tmp_path / 'full'}",
                           "--ablation", f"whitening init|--whitening-images 0|{tmp_path / 'nowhite'}",
                           "--earlier", '{"epochs": 10, "tta_test_acc": 0.9}', "--earlier", '{"epochs": 18}'])
    with open(out / "speedrun_cpu.json") as f:
        res = json.load(f)
    assert [(r["seed"], r["test_acc"], r["tta_test_acc"]) for r in res["runs"]] == [(0, 0.9, 0.91), (1, 0.91, 0.92)]
    assert res["runs"][0]["train_minutes"] == 21.0          # the epochs' times, not the test passes'
    assert res["runs"][0]["process_minutes"] == pytest.approx(1280 / 60, abs=0.01)
    assert (out / "cpu_speedrun_cpu_seed1_metrics.csv").exists() and res["runs"][1]["metrics"].startswith("docs/")
    abl = res["ablations"]
    assert (abl["epochs"], abl["seed"]) == (1, 0)
    assert [(r["trick"], r["flags"], r["test_acc"]) for r in abl["rows"]] == \
        [("the recipe", "", 0.85), ("whitening init", "--whitening-images 0", 0.80)]
    assert [e["epochs"] for e in res["earlier"]] == [10, 18]
