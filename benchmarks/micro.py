"""Micro-benchmarks: forward + backward of single ops at the shapes ResNet-20, the CIFAR ViT and
cifar_speedrun use (batch 128), against PyTorch on the same threads when installed (--vs-torch).

    python benchmarks/micro.py [--vs-torch] [--device cuda] [--repeat 5]

Each library gets its activations in the memory order its own layers hand each other: PyTorch
contiguous NCHW, tinyvision (N, C, H, W) views of channel-major (C, N, H, W) memory, which is
what its convolutions, batch norms and ReLUs produce (see tinyvision/ops/conv.py). Fed NCHW
memory instead, a tinyvision convolution pays a transposing copy it never makes inside a
network (16-channel 3x3 at 32x32, two threads: about 33 vs 27 ms).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tinyvision as tv  # noqa: E402
import tinyvision.nn.functional as F  # noqa: E402

B = 128


def same3x3(c_in, c_out, size):
    """A 3x3, padding-1 convolution case at batch B: (input shapes, tinyvision fn, torch fn)."""
    return ([(B, c_in, size, size), (c_out, c_in, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1),
            lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1))


CASES = {  # name: (input shapes, tinyvision fn, torch fn)
    "conv3x3 16->16 @32": same3x3(16, 16, 32),
    "conv3x3 32->32 @16": same3x3(32, 32, 16),
    "conv3x3 64->64 @8": same3x3(64, 64, 8),
    "conv3x3 16->32 s2": ([(B, 16, 32, 32), (32, 16, 3, 3)], lambda x, w: F.conv2d(x, w, stride=2, padding=1),
                          lambda t, x, w: t.nn.functional.conv2d(x, w, stride=2, padding=1)),
    "conv3x3 64->64 @15": same3x3(64, 64, 15),  # cifar_speedrun's
    "conv3x3 64->256 @15": same3x3(64, 256, 15),
    "conv3x3 256->256 @7": same3x3(256, 256, 7),
    "max_pool2d 256@15": ([(B, 256, 15, 15)], lambda x: F.max_pool2d(x, 2),
                          lambda t, x: t.nn.functional.max_pool2d(x, 2)),
    "batch_norm 16@32": ([(B, 16, 32, 32), (16,), (16,)], lambda x, g, b: F.batch_norm(x, weight=g, bias=b),
                         lambda t, x, g, b: t.nn.functional.batch_norm(x, None, None, g, b, training=True)),
    "layer_norm 65x192": ([(B, 65, 192), (192,), (192,)], lambda x, g, b: F.layer_norm(x, 192, g, b),
                          lambda t, x, g, b: t.nn.functional.layer_norm(x, (192,), g, b)),
    "attention 3x65x64": ([(B, 3, 65, 64)] * 3, lambda q, k, v: tv.nn.scaled_dot_product_attention(q, k, v),
                          lambda t, q, k, v: t.nn.functional.scaled_dot_product_attention(q, k, v)),
    "linear 65x192->576": ([(B, 65, 192), (576, 192), (576,)], F.linear,
                           lambda t, x, w, b: t.nn.functional.linear(x, w, b)),
}


def channel_major(a):
    """A 4-D array as a view of (C, N, H, W) memory with the same values; others unchanged."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3) if a.ndim == 4 else a


def best_of(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vs-torch", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    torch = None
    if args.vs_torch:
        import torch
        torch.set_num_threads(tv.parallel.compute_threads())
    sync = (lambda: tv.backend.cupy().cuda.Device().synchronize()) if args.device == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    print(f"{'op (fwd+bwd, batch 128)':<24}{'tinyvision ms':>14}" + (f"{'PyTorch ms':>12}{'ratio':>8}" if torch else ""))
    for name, (shapes, fn, torch_fn) in CASES.items():
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        inputs = [tv.tensor(channel_major(a), device=args.device, requires_grad=True) for a in arrays]
        grad = None

        def run():
            nonlocal grad
            out = fn(*inputs)
            if grad is None:
                grad = tv.tensor(channel_major(rng.standard_normal(out.shape).astype(np.float32)), device=args.device)
            out.backward(grad)
            sync()
        t_tv = best_of(run, args.repeat)
        line = f"{name:<24}{1e3 * t_tv:>14.2f}"
        if torch:
            dev = "cuda" if args.device == "cuda" else "cpu"
            tins = [torch.tensor(a, device=dev, requires_grad=True) for a in arrays]
            tgrad = torch.tensor(grad.numpy(), device=dev)

            def trun():
                torch_fn(torch, *tins).backward(tgrad)
                if dev == "cuda":
                    torch.cuda.synchronize()
            t_pt = best_of(trun, args.repeat)
            line += f"{1e3 * t_pt:>12.2f}{t_pt / t_tv:>8.2f}"
        print(line)


if __name__ == "__main__":
    main()
