"""Tiny generated scenes for the detection and segmentation tests: random 32x32 'objects'
pasted onto 64x64 canvases by ``make_scenes``."""
import numpy as np

from tinyvision.tasks.scenes import SceneDataset, make_scenes


def tiny_scenes(n=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    imgs, labels = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), rng.integers(0, classes, 30)
    return SceneDataset(make_scenes(imgs, labels, n, seed=seed), [str(i) for i in range(classes)])


def losses_of_steps(model, x, targets, steps, lr):
    """Train ``model`` on one batch for ``steps`` AdamW steps; the loss before each step."""
    import tinyvision as tv
    opt = tv.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = model.loss(tv.tensor(x), targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def run_task_cli(argv):
    """Run ``python -m tinyvision detect|segment ...`` in-process; returns its exit code."""
    import argparse

    from tinyvision.tasks.cli import add_subparsers
    parser = argparse.ArgumentParser()
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.fn(args)
