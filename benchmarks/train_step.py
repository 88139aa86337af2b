"""Training-step throughput: forward + backward + optimizer step, after warm-up.

    python benchmarks/train_step.py --model resnet20 --batch-size 128 [--vs-torch] [--device cuda]

Reports images/s (median over the timed steps), peak memory, a per-op time breakdown, and
with --vs-torch the same architecture in PyTorch, timed in the same process on the same
threads, alternating step by step, with the ratio. --inference times eval-mode forward only.
"""
import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tinyvision as tv  # noqa: E402
from tinyvision.profiler import profile  # noqa: E402


def rss_mb():
    """Resident memory now (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--inference", action="store_true", help="time eval-mode forward passes only")
    p.add_argument("--vs-torch", action="store_true", help="compare with PyTorch (if installed)")
    p.add_argument("--no-breakdown", action="store_true")
    args = p.parse_args()

    tv.manual_seed(0)
    rng = np.random.default_rng(0)
    model = tv.models.create(args.model, num_classes=10).to(args.device)
    model.train(not args.inference)
    opt = tv.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = tv.tensor(rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32), device=args.device)
    y = tv.tensor(rng.integers(0, 10, args.batch_size), device=args.device)
    step = tv_step_fn(model, opt, x, y, args.inference, args.device)

    rss0 = rss_mb()
    for _ in range(args.warmup):
        step()
    rss_after_warmup = rss_mb()
    torch_step = None
    if args.vs_torch:
        try:
            import torch
        except ImportError:
            raise SystemExit("--vs-torch needs PyTorch (pip install torch); it is not a tinyvision dependency")
        torch.set_num_threads(tv.parallel.compute_threads())
        torch_step = torch_step_fn(args.model, args.batch_size, args.inference, args.device)
        for _ in range(args.warmup):
            torch_step()
    tv_times, torch_times = [], []
    for _ in range(args.steps):  # alternate, so both see the same machine state
        tv_times += timed(step, 1)
        if torch_step:
            torch_times += timed(torch_step, 1)
    rss_end = rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    mode = "inference" if args.inference else "training"
    tv_ips = args.batch_size / float(np.median(tv_times))
    print(f"{args.model} {mode}, batch {args.batch_size}, {args.device}, numpy {np.__version__}, "
          f"{tv.parallel.compute_threads()} thread(s)")
    print(f"tinyvision: {tv_ips:8.1f} images/s  (median step {1e3 * np.median(tv_times):.0f} ms)")
    print(f"memory: RSS {rss0:.0f} MB before, {rss_after_warmup:.0f} MB after warm-up, {rss_end:.0f} MB after "
          f"{args.steps} more steps (flat = no leak); process peak {peak:.0f} MB")
    if torch_step:
        torch_ips = args.batch_size / float(np.median(torch_times))
        print(f"PyTorch {torch.__version__}: {torch_ips:8.1f} images/s  -> ratio tinyvision/PyTorch = "
              f"{tv_ips / torch_ips:.2f}")
    if not args.no_breakdown:
        with profile(sync=args.device == "cuda") as prof:
            for _ in range(3):
                step()
        print("\nper-op time per step (ms):")
        print(prof.table(steps=3))


if __name__ == "__main__":
    main()
