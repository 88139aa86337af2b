"""Self-checks of the exercises of appendices C/E/F (the article's code listings): gradient
clipping by value and by norm, ResNet-50 from its block class, batch norm's running statistics."""
import numpy as np

import tinyvision as tv

from . import as_array, self_check

_G = np.array([0.5, 2.0, -4.0])


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@self_check
def value_clip_cosine(answer):
    """Exercise: the cosine between g = (0.5, 2, -4) and its values clamped into [-1, 1]."""
    answer, expected = float(answer), _cosine(_G, np.clip(_G, -1.0, 1.0))
    if abs(answer - 1.0) < 1e-3:
        return False, ("1 would mean the direction is unchanged; that is norm clipping. Clamp each value "
                       "into [-1, 1] first, then compute g . c / (|g| |c|)")
    ok = abs(answer - expected) < 2e-3
    return ok, (f"cos = {expected:.4f}: clamping turned g by {np.degrees(np.arccos(expected)):.1f} degrees, while "
                "norm clipping only shortens it (cosine 1)" if ok else
                f"{answer:.4f} is not it; the clamped copy is (0.5, 1, -1): compute g . c / (|g| |c|)")


@self_check
def clip_grad_norm(fn, max_norm=1.0):
    """Exercise: global-norm gradient clipping of a list of arrays, against the formula and
    tv.optim.clip_grad_norm_."""
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=s) for s in ((3, 4), (4,), (2, 2, 3))]
    originals = [g.copy() for g in grads]
    out = fn(grads, max_norm)
    if out is None:
        return False, "clip_grad_norm returned None; return a list of arrays"
    out = [np.asarray(o, dtype=np.float64) for o in out]
    if len(out) != len(grads) or any(o.shape != g.shape for o, g in zip(out, grads)):
        return False, f"expected {len(grads)} arrays of shapes {[g.shape for g in grads]}, got {[o.shape for o in out]}"
    if any(not np.array_equal(g, o) for g, o in zip(grads, originals)):
        return False, "your function changed its input arrays; return new ones"
    params = [tv.nn.Parameter(tv.tensor(g, dtype=np.float64)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = tv.tensor(g.copy(), dtype=np.float64)
    tv.optim.clip_grad_norm_(params, max_norm)
    expected = [p.grad.numpy() for p in params]
    per_array = [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads]
    if all(np.allclose(o, e) for o, e in zip(out, expected)):
        small = [0.1 * g for g in grads]
        if not all(np.allclose(o, s) for o, s in zip(fn(small, max_norm), small)):
            return False, "a gradient whose norm is already below max_norm must come back unchanged"
        total = np.sqrt(sum((o ** 2).sum() for o in out))
        return True, f"global norm {np.sqrt(sum((g ** 2).sum() for g in grads)):.3f} -> {total:.3f}, as tv.optim.clip_grad_norm_"
    if all(np.allclose(o, e) for o, e in zip(out, per_array)):
        return False, "you clipped each array by its own norm; the formula uses one norm over all arrays together"
    return False, "the result differs from g * min(1, max_norm / |g|) with |g| the norm over all arrays"


@self_check
def resnet50_model(model):
    """Exercise: ResNet-50 as ResNet(Bottleneck, (3, 4, 6, 3)) with 1000 classes."""
    if not isinstance(model, tv.nn.Module):
        return False, f"expected a tinyvision model, got {type(model).__name__}"
    count = sum(p.size for p in model.parameters())
    reference = tv.models.create("resnet50", num_classes=1000)
    expected = sum(p.size for p in reference.parameters())
    if count == expected and list(model.state_dict()) == list(reference.state_dict()):
        return True, (f"{count:,} parameters, the same names as tv.models.create('resnet50'): "
                      f"{count / 11_689_512:.2f}x ResNet-18's, from depth 50 and 4x wider outputs of each stage")
    hint = ("that is ResNet-34's count: (3, 4, 6, 3) BasicBlocks; ResNet-50 uses Bottleneck" if count == 21_797_672
            else "ResNet-50 is tv.models.ResNet(tv.models.Bottleneck, (3, 4, 6, 3), num_classes=1000)")
    return False, f"{count:,} parameters, ResNet-50 has {expected:,}: {hint}"


@self_check
def running_stats(fn, momentum=0.1):
    """Exercise: batch norm's running mean and (unbiased) variance after several training batches,
    against tv.nn.BatchNorm2d."""
    rng = np.random.default_rng(5)
    batches = [(rng.normal(size=(4, 3, 2, 2)) * s + m).astype(np.float32) for s, m in ((1, 0), (3, 2), (0.5, -1))]
    answer = fn([b.copy() for b in batches], momentum)
    if answer is None:
        return False, "running_stats returned None; return (running_mean, running_var)"
    mean, problem = as_array(answer[0], (3,), "running_mean")
    var, problem_var = as_array(answer[1], (3,), "running_var")
    if problem or problem_var:
        return False, problem or problem_var
    bn = tv.nn.BatchNorm2d(3, momentum=momentum).train()
    for b in batches:
        bn(tv.tensor(b))
    ref_mean, ref_var = bn.running_mean.numpy(), bn.running_var.numpy()
    if not np.allclose(mean, ref_mean, atol=1e-4):
        return False, f"running_mean {mean.round(4)}, expected {ref_mean.round(4)}: start at 0, mix in each batch's channel means"
    biased = np.ones(3)
    for b in batches:
        biased = (1 - momentum) * biased + momentum * b.var(axis=(0, 2, 3))
    if np.allclose(var, biased, atol=1e-4) and not np.allclose(var, ref_var, atol=1e-4):
        return False, "your running_var mixes in the biased variance; the running estimate uses n / (n - 1) times it"
    if not np.allclose(var, ref_var, atol=1e-4):
        return False, f"running_var {var.round(4)}, expected {ref_var.round(4)}: start at 1, unbiased batch variances"
    return True, f"running mean {ref_mean.round(3)} and variance {ref_var.round(3)}, as tv.nn.BatchNorm2d's"
