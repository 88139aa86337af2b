"""Training-step throughput: forward + backward + optimizer step, after warm-up.

    python benchmarks/train_step.py --model resnet20 --batch-size 128 [--vs-torch] [--device cuda]
    python benchmarks/train_step.py --model cifar_speedrun --vs-torch      # batch 512 by default

Reports images/s (median over the timed steps), peak memory, a per-op time breakdown, and
with --vs-torch the same architecture in PyTorch, timed in the same process on the same
threads, alternating step by step (in a random order within each pair), with the ratio and its
quartiles over the pairs. --inference times eval-mode forward only.
"""
import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tinyvision as tv  # noqa: E402
from tinyvision.fileio import write_json  # noqa: E402
from tinyvision.profiler import profile  # noqa: E402


def rss_mb():
    """Resident memory now (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


DEFAULT_BATCH = {"cifar_speedrun": 512}  # the speed-run recipe's batch on a CPU; others 128


def default_batch(name):
    """The batch a model is timed at unless --batch-size says otherwise."""
    return DEFAULT_BATCH.get(name, 128)


def make_step(model, opt, x, y, inference, sync, no_grad, cross_entropy):
    """One training step (or an eval-mode forward pass) of either library, then a device sync;
    the library supplies ``no_grad``, ``cross_entropy`` and ``sync``."""
    def step():
        if inference:
            with no_grad():
                model(x)
        else:
            loss = cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync()
    return step


def tv_step_fn(model, opt, x, y, inference, device):
    sync = (lambda: tv.backend.cupy().cuda.Device().synchronize()) if device == "cuda" else (lambda: None)
    return make_step(model, opt, x, y, inference, sync, tv.no_grad, tv.nn.functional.cross_entropy)


def torch_step_fn(name, batch, inference, device):
    import torch
    from torch_reference import build
    model = build(name).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model.train(not inference)
    return make_step(model, opt, x, y, inference, sync, torch.no_grad, torch.nn.functional.cross_entropy)


def timed(step, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def alternate(step_a, step_b, pairs, seed=0):
    """Times of ``pairs`` runs of each step, in pairs: within a pair the two run back to back,
    and which runs first is drawn at random (seeded). Alternating lets both see the same state
    of a shared machine; the random order keeps either from always running in the other's
    wake (with a fixed order, ResNet-20 steps here showed a bias between odd and even places
    large enough to fake a 6-10% difference). Returns (times of a, times of b), pair by pair."""
    order = np.random.default_rng(seed).integers(0, 2, pairs)
    times_a, times_b = [], []
    for first_b in order:
        if first_b:
            times_b += timed(step_b, 1)
            times_a += timed(step_a, 1)
        else:
            times_a += timed(step_a, 1)
            times_b += timed(step_b, 1)
    return times_a, times_b


def measure(name, batch_size=None, steps=10, warmup=2, device="cpu", inference=False, vs_torch=False):
    """Time ``name``'s training steps (or eval-mode forward passes); returns a dict of
    images/s, the memory readings and, with ``vs_torch``, PyTorch's images/s and the ratio.
    Memory is read before PyTorch is imported, so it is tinyvision's alone. ``batch_size``
    None: ``default_batch(name)``."""
    batch_size = batch_size or default_batch(name)
    tv.manual_seed(0)
    rng = np.random.default_rng(0)
    model = tv.models.create(name, num_classes=10).to(device)
    model.train(not inference)
    opt = tv.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = tv.tensor(rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32), device=device)
    y = tv.tensor(rng.integers(0, 10, batch_size), device=device)
    step = tv_step_fn(model, opt, x, y, inference, device)

    result = dict(model=name, mode="inference" if inference else "training", batch_size=batch_size,
                  device=device, numpy=np.__version__, threads=tv.parallel.compute_threads(),
                  rss_before_mb=rss_mb())
    for _ in range(warmup):
        step()
    result["rss_after_warmup_mb"] = rss_mb()
    for _ in range(3):  # a few more steps on their own: the memory must stay flat
        step()
    result["rss_after_3_more_mb"] = rss_mb()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch_step = None
    if vs_torch:
        try:
            import torch
        except ImportError:
            raise SystemExit("--vs-torch needs PyTorch (pip install torch); it is not a tinyvision dependency")
        torch.set_num_threads(tv.parallel.compute_threads())
        torch_step = torch_step_fn(name, batch_size, inference, device)
        for _ in range(warmup):
            torch_step()
        result["torch"] = torch.__version__
    if torch_step:
        tv_times, torch_times = alternate(step, torch_step, steps)
    else:
        tv_times = timed(step, steps)
    result["images_per_s"] = batch_size / float(np.median(tv_times))
    if torch_step:
        result["torch_images_per_s"] = batch_size / float(np.median(torch_times))
        result["ratio"] = result["images_per_s"] / result["torch_images_per_s"]
        # the spread of the ratio within this run: one ratio per pair of neighbouring steps
        pair_ratios = np.asarray(torch_times) / np.asarray(tv_times)
        result["ratio_quartiles"] = [float(q) for q in np.percentile(pair_ratios, [25, 75])]
    result["step"] = step
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"images per step (default: 128; {DEFAULT_BATCH} where given)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--inference", action="store_true", help="time eval-mode forward passes only")
    p.add_argument("--vs-torch", action="store_true", help="compare with PyTorch (if installed)")
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--json", help="also write the measurements to this JSON file")
    args = p.parse_args()

    r = measure(args.model, args.batch_size, args.steps, args.warmup, args.device, args.inference, args.vs_torch)
    step = r.pop("step")
    print(f"{r['model']} {r['mode']}, batch {r['batch_size']}, {r['device']}, numpy {r['numpy']}, "
          f"{r['threads']} thread(s)")
    print(f"tinyvision: {r['images_per_s']:8.1f} images/s  (median step {1e3 * r['batch_size'] / r['images_per_s']:.0f} ms)")
    print(f"memory: RSS {r['rss_before_mb']:.0f} MB before, {r['rss_after_warmup_mb']:.0f} MB after warm-up, "
          f"{r['rss_after_3_more_mb']:.0f} MB after 3 more steps (flat = no leak); peak {r['peak_rss_mb']:.0f} MB "
          "(read before PyTorch is loaded)")
    if "ratio" in r:
        lo, hi = r["ratio_quartiles"]
        print(f"PyTorch {r['torch']}: {r['torch_images_per_s']:8.1f} images/s  -> ratio tinyvision/PyTorch = "
              f"{r['ratio']:.2f} (pair by pair: quartiles {lo:.2f}-{hi:.2f} over {args.steps} pairs)")
    if args.json:
        write_json(args.json, r)
    if not args.no_breakdown:
        with profile(sync=args.device == "cuda") as prof:
            for _ in range(3):
                step()
        print("\nper-op time per step (ms):")
        print(prof.table(steps=3))


if __name__ == "__main__":
    main()
