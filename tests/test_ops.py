"""Every op: forward against NumPy, backward by float64 gradcheck (random upstream gradient),
float32 in -> float32 out, on each available backend."""
import math

import numpy as np
import pytest

import tinyvision as tv
import tinyvision.ops as F

from references import conv_reference, pool_reference


def T(a, device="cpu", dtype=np.float64, grad=False):
    return tv.tensor(np.asarray(a), dtype=dtype, device=device, requires_grad=grad)


def away_from_kinks(rng, shape, lo=0.2):
    """Random values with |x| >= lo, so ReLU/abs/max are differentiable at every input."""
    x = rng.uniform(lo, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


def erf_ref(x):
    return np.vectorize(math.erf)(x)


# (name, tinyvision fn, numpy reference, input shapes, input generator)
UNARY = [
    ("neg", lambda a: -a, lambda a: -a, None),
    ("exp", F.exp, np.exp, None),
    ("log", F.log, np.log, "positive"),
    ("sqrt", F.sqrt, np.sqrt, "positive"),
    ("abs", F.abs, np.abs, "kinks"),
    ("relu", F.relu, lambda a: np.maximum(a, 0), "kinks"),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.1), lambda a: np.where(a > 0, a, 0.1 * a), "kinks"),
    ("gelu", F.gelu, lambda a: a * 0.5 * (1 + erf_ref(a / np.sqrt(2))), None),
    ("gelu_tanh", lambda a: F.gelu(a, "tanh"),
     lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3))), None),
    ("sigmoid", F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), None),
    ("tanh", F.tanh, np.tanh, None),
    ("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, None),
    ("clip", lambda a: F.clip(a, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), "clip"),
    ("softmax", lambda a: F.softmax(a, axis=1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True), None),
    ("log_softmax", lambda a: F.log_softmax(a, axis=0),
     lambda a: a - np.log(np.exp(a).sum(0, keepdims=True)), None),
    ("logsumexp", lambda a: F.logsumexp(a, axis=1), lambda a: np.log(np.exp(a).sum(1)), None),
    ("sum", lambda a: a.sum(axis=0), lambda a: a.sum(0), None),
    ("sum_keep", lambda a: a.sum(axis=(0, 1), keepdims=True), lambda a: a.sum((0, 1), keepdims=True), None),
    ("mean", lambda a: a.mean(axis=1), lambda a: a.mean(1), None),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), None),
    ("max", lambda a: a.max(axis=1), lambda a: a.max(1), None),
    ("min", lambda a: a.min(axis=0, keepdims=True), lambda a: a.min(0, keepdims=True), None),
    ("var", lambda a: a.var(axis=1), lambda a: a.var(1), None),
    ("var_unbiased", lambda a: F.var(a, axis=0, ddof=1), lambda a: a.var(0, ddof=1), None),
    ("reshape", lambda a: a.reshape(2, -1), lambda a: a.reshape(2, -1), None),
    ("flatten", lambda a: a.flatten(), lambda a: a.reshape(-1), None),
    ("transpose", lambda a: a.transpose(0, 1), lambda a: a.T, None),
    ("T", lambda a: a.T, lambda a: a.T, None),
    ("getitem_slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], None),
    ("getitem_int_array", lambda a: a[np.array([0, 2, 0])], lambda a: a[[0, 2, 0]], None),
    ("getitem_bool", lambda a: a[a.data > 0], lambda a: a[a > 0], None),
    ("pad", lambda a: F.pad(a, ((1, 0), (2, 1))), lambda a: np.pad(a, ((1, 0), (2, 1))), None),
    ("broadcast_to", lambda a: a[:1].broadcast_to(5, 4), lambda a: np.broadcast_to(a[:1], (5, 4)), None),
    ("unsqueeze", lambda a: a.unsqueeze(1), lambda a: a[:, None], None),
]


def make_input(kind, rng, shape=(3, 4)):
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "kinks":
        return away_from_kinks(rng, shape)
    if kind == "clip":
        x = rng.uniform(-1, 1, size=shape)
        x[np.abs(x + 0.5) < 0.05] += 0.2
        x[np.abs(x - 0.7) < 0.05] -= 0.2
        return x
    return rng.standard_normal(shape)


@pytest.mark.parametrize("name,fn,ref,kind", UNARY, ids=[u[0] for u in UNARY])
def test_unary_forward_backward(name, fn, ref, kind, rng, device):
    x = make_input(kind, rng)
    out = fn(T(x, device))
    np.testing.assert_allclose(out.numpy(), ref(x), rtol=1e-6, atol=1e-8)
    tv.gradcheck(fn, T(x, device))
    out32 = fn(T(x, device, dtype=np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), ref(x), rtol=2e-5, atol=2e-5)


BINARY = [
    ("add", lambda a, b: a + b, np.add),
    ("sub", lambda a, b: a - b, np.subtract),
    ("mul", lambda a, b: a * b, np.multiply),
    ("div", lambda a, b: a / b, np.divide),
    ("pow", lambda a, b: a ** b, np.power),
    ("maximum", F.maximum, np.maximum),
    ("minimum", F.minimum, np.minimum),
]
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3))]


@pytest.mark.parametrize("name,fn,ref", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_with_broadcasting(name, fn, ref, sa, sb, rng, device):
    a = rng.uniform(0.5, 2.0, size=sa)
    b = rng.uniform(0.5, 2.0, size=sb) + 0.1  # no ties for max/min, positive bases for pow
    np.testing.assert_allclose(fn(T(a, device), T(b, device)).numpy(), ref(a, b), rtol=1e-7)
    tv.gradcheck(fn, T(a, device), T(b, device))
    assert fn(T(a, device, np.float32), T(b, device, np.float32)).dtype == np.float32


def test_where(rng, device):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    cond = a > b
    np.testing.assert_allclose(F.where(cond, T(a, device), T(b, device)).numpy(), np.where(cond, a, b))
    tv.gradcheck(lambda x, y: F.where(cond, x, y), T(a, device), T(b, device))


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb, rng, device):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((T(a, device) @ T(b, device)).numpy(), a @ b, rtol=1e-10)
    tv.gradcheck(F.matmul, T(a, device), T(b, device))


def test_matmul_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        tv.tensor(np.ones((3, 4))) @ tv.tensor(np.ones((5, 2)))


def test_linear_flattens_leading_axes(rng, device):
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    np.testing.assert_allclose(F.linear(T(x, device), T(w, device), T(b, device)).numpy(), x @ w.T + b)
    tv.gradcheck(F.linear, T(x, device), T(w, device), T(b, device))
    tv.gradcheck(F.linear, T(x, device), T(w, device))


def test_concatenate_stack_split_chunk(rng, device):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    np.testing.assert_allclose(F.cat([T(a, device), T(b, device)], axis=1).numpy(), np.concatenate([a, b], 1))
    tv.gradcheck(lambda x, y: F.cat([x, y], axis=1), T(a, device), T(b, device))
    tv.gradcheck(lambda x, y: F.stack([x, y], axis=1), T(a, device), T(a * 2, device))
    x = T(rng.standard_normal((7, 2)), device)
    parts = F.split(x, 3)
    assert [p.shape[0] for p in parts] == [3, 3, 1]
    assert [p.shape[0] for p in F.chunk(x, 2)] == [4, 3]
    assert [p.shape[1] for p in F.split(x, [1, 1], axis=1)] == [1, 1]
    tv.gradcheck(lambda t: F.split(t, 3)[1] * F.split(t, 3)[0], x)


def test_permute(rng, device):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(T(x, device).permute(2, 0, 1).numpy(), x.transpose(2, 0, 1))
    tv.gradcheck(lambda t: t.permute(2, 0, 1), T(x, device))


def test_dropout_scales_and_masks(device):
    x = tv.ones(1000, 10, device=device, requires_grad=True)
    y = F.dropout(x, p=0.3, training=True)
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.numpy())
    assert F.dropout(x, p=0.3, training=False) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(x, p=1.0)


# ------------------------------------------------------------------ losses
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(smoothing, weighted, reduction, rng, device):
    N, C = 5, 4
    z = rng.standard_normal((N, C))
    t = np.array([0, 3, 1, 1, 2])
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    q = np.full((N, C), smoothing / C)
    q[np.arange(N), t] += 1 - smoothing
    wc = w if weighted else np.ones(C)
    per = -(q * wc * logp).sum(1)
    expected = {"none": per, "sum": per.sum(), "mean": per.sum() / wc[t].sum()}[reduction]
    wt = T(w, device) if weighted else None
    out = F.cross_entropy(T(z, device), tv.tensor(t, device=device), weight=wt,
                          label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
    tv.gradcheck(lambda a: F.cross_entropy(a, tv.tensor(t, device=device), weight=wt,
                                           label_smoothing=smoothing, reduction=reduction), T(z, device))


def test_cross_entropy_spatial_and_ignore_index(rng, device):
    z = rng.standard_normal((2, 3, 2, 2))
    t = np.array([[[0, 2], [1, -100]], [[2, 2], [0, 1]]])
    zz = z.transpose(0, 2, 3, 1).reshape(-1, 3)
    tt = t.reshape(-1)
    keep = tt != -100
    logp = zz - np.log(np.exp(zz).sum(1, keepdims=True))
    expected = -logp[np.arange(len(tt))[keep], tt[keep]].mean()
    target = tv.tensor(t, device=device)
    np.testing.assert_allclose(F.cross_entropy(T(z, device), target).numpy(), expected, rtol=1e-10)
    tv.gradcheck(lambda a: F.cross_entropy(a, target), T(z, device))


def test_cross_entropy_errors():
    z = tv.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets of shape"):
        F.cross_entropy(z, tv.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(z, tv.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.cross_entropy(z, tv.tensor([0, 5]))


def test_mse_loss(rng, device):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.mse_loss(T(a, device), T(b, device)).numpy(), ((a - b) ** 2).mean())
    for red in ("mean", "sum", "none"):
        tv.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=red), T(a, device), T(b, device))


# ------------------------------------------------------------------ convolution, pooling, norms
CONV_CASES = [  # (C, O, kernel, stride, padding, dilation, groups, H, W)
    (3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, 5, 6),
    (2, 3, (3, 2), (2, 2), (0, 0), (1, 1), 1, 7, 6),
    (2, 2, (3, 3), (2, 1), (2, 2), (1, 1), 1, 5, 5),
    (2, 2, (3, 3), (1, 1), (1, 1), (2, 2), 1, 6, 7),
    (4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, 5, 5),
    (4, 4, (3, 3), (2, 2), (1, 1), (1, 1), 4, 6, 6),
    (3, 5, (1, 1), (1, 1), (0, 0), (1, 1), 1, 4, 3),
    # stride 1 with more padding than the kernel reaches (the flat layout's shared padding
    # must then widen to hold every output), and uneven kernels and paddings
    (2, 3, (3, 3), (1, 1), (3, 2), (1, 1), 1, 4, 5),
    (2, 2, (1, 1), (1, 1), (1, 1), (1, 1), 1, 3, 4),
    (3, 2, (3, 2), (1, 1), (1, 0), (1, 2), 1, 5, 6),
    # stride-1 "same" layers read their input in place (SameLayout): an uneven kernel and
    # padding, dilation 2 (two masked rows and columns a side), taps reaching past the image
    (3, 2, (3, 5), (1, 1), (1, 2), (1, 1), 1, 4, 6),
    (2, 3, (3, 3), (1, 1), (2, 2), (2, 2), 1, 6, 5),
    (2, 2, (7, 7), (1, 1), (3, 3), (1, 1), 1, 3, 4),
    # strided convolutions on polyphase planes: ResNet's downsampling shape, stride 3 with
    # dilation 2 (taps on three planes), stride 2 with dilation 2 (every tap on one plane, the
    # other three get zero gradient); non-overlapping windows take the strided im2col path
    (2, 3, (3, 3), (2, 2), (1, 1), (1, 1), 1, 8, 8),
    (2, 3, (3, 3), (3, 3), (1, 1), (2, 2), 1, 8, 7),
    (2, 2, (3, 3), (2, 2), (1, 1), (2, 2), 1, 7, 7),
    (3, 4, (1, 1), (2, 2), (0, 0), (1, 1), 1, 5, 6),
    (3, 2, (4, 4), (4, 4), (0, 0), (1, 1), 1, 8, 8),
]


@pytest.mark.parametrize("C,O,k,s,p,d,g,H,W", CONV_CASES)
def test_conv2d(C, O, k, s, p, d, g, H, W, rng, device):
    x = rng.standard_normal((2, C, H, W))
    w = rng.standard_normal((O, C // g) + k)
    b = rng.standard_normal(O)
    out = F.conv2d(T(x, device), T(w, device), T(b, device), stride=s, padding=p, dilation=d, groups=g)
    np.testing.assert_allclose(out.numpy(), conv_reference(x, w, b, s, p, d, g), rtol=1e-10, atol=1e-10)
    tv.gradcheck(lambda a, ww, bb: F.conv2d(a, ww, bb, stride=s, padding=p, dilation=d, groups=g),
                 T(x, device), T(w, device), T(b, device))


@pytest.mark.parametrize("C,O,k,s,p,d,g,H,W", CONV_CASES)
def test_conv2d_weight_gradient_alone(C, O, k, s, p, d, g, H, W, rng, device):
    # A network's first layer needs dL/dW but no dL/dx: the backward then takes dW from the
    # input's columns rather than from the output gradient's columns it builds for dL/dx.
    x = rng.standard_normal((2, C, H, W))
    w = rng.standard_normal((O, C // g) + k)
    tv.gradcheck(lambda a, ww: F.conv2d(a, ww, stride=s, padding=p, dilation=d, groups=g),
                 T(x, device), T(w, device, grad=True))


def test_relu_gradient_keeps_the_activation_memory_order(rng):
    # A global average pool hands back a plain NCHW (broadcast) gradient; ReLU's dL/dx must
    # come out in the channel-major order of the convolution output it followed, so the batch
    # norm and convolution backward before it read their rows without a copy.
    x = tv.tensor(np.ascontiguousarray(rng.standard_normal((3, 4, 5, 5)).transpose(1, 0, 2, 3)).transpose(
        1, 0, 2, 3), requires_grad=True)
    F.relu(x).mean(axis=(2, 3)).sum().backward()
    assert x.grad.data.transpose(1, 0, 2, 3).flags.c_contiguous
    np.testing.assert_allclose(x.grad.numpy(), (x.numpy() > 0) / 25.0)


def test_conv2d_errors():
    x = tv.tensor(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"expected 2 input channels"):
        F.conv2d(x, tv.tensor(np.zeros((4, 2, 3, 3))))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d(tv.tensor(np.zeros((3, 5, 5))), tv.tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="too small"):
        F.conv2d(x, tv.tensor(np.zeros((4, 3, 7, 7))))


@pytest.mark.parametrize("s,p,op,g", [(1, 0, 0, 1), (2, 1, 1, 1), (2, 0, 0, 2), (3, 1, 2, 1)])
def test_conv_transpose2d_is_adjoint_of_conv2d(s, p, op, g, rng, device):
    Cin, Cout, K = 4, 2, 3
    x = rng.standard_normal((2, Cin, 3, 4))
    w = rng.standard_normal((Cin, Cout // g, K, K))
    b = rng.standard_normal(Cout)
    y = F.conv_transpose2d(T(x, device), T(w, device), T(b, device), stride=s, padding=p,
                           output_padding=op, groups=g).numpy()
    # <conv_transpose(x), v> = <x, conv(v)>: the same weight, read as a convolution from
    # Cout to Cin channels, (O, C/g, K, K) = (Cin, Cout/g, K, K)
    v = rng.standard_normal(y.shape)
    cv = F.conv2d(T(v, device), T(w, device), stride=s, padding=p, groups=g).numpy()
    np.testing.assert_allclose(((y - b.reshape(1, -1, 1, 1)) * v).sum(), (x * cv).sum(), rtol=1e-9)
    tv.gradcheck(lambda a, ww, bb: F.conv_transpose2d(a, ww, bb, stride=s, padding=p, output_padding=op,
                                                      groups=g), T(x, device), T(w, device), T(b, device))


def pool_input(rng, shape):
    """Distinct values (no ties inside a window) for max pooling."""
    n = int(np.prod(shape))  # values k/n: gaps of 1/n >> the finite-difference step
    return rng.permutation(n).reshape(shape) / n


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (2, 1), 0)])
def test_max_pool2d(k, s, p, rng, device):
    x = pool_input(rng, (2, 3, 6, 7))
    out = F.max_pool2d(T(x, device), k, s, p).numpy()
    np.testing.assert_allclose(out, pool_reference(x, k, s, p, "max"))
    tv.gradcheck(lambda a: F.max_pool2d(a, k, s, p), T(x, device))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_avg_pool2d(k, s, p, rng, device):
    x = rng.standard_normal((2, 3, 6, 7))
    out = F.avg_pool2d(T(x, device), k, s, p).numpy()
    np.testing.assert_allclose(out, pool_reference(x, k, s, p, "mean"), rtol=1e-12)
    tv.gradcheck(lambda a: F.avg_pool2d(a, k, s, p), T(x, device))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 5), (3, 2, 7)])
def test_batch_norm_train_and_eval(shape, rng, device):
    x = rng.standard_normal(shape) * 2 + 1
    C = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, C) + (1,) * (len(shape) - 2)
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    rm, rv = np.zeros(C), np.ones(C)
    out = F.batch_norm(T(x, device), T(rm, device).data, T(rv, device).data, T(gamma, device),
                       T(beta, device), training=True)
    np.testing.assert_allclose(out.numpy(), (x - mu) / np.sqrt(var + 1e-5) * gamma.reshape(bshape)
                               + beta.reshape(bshape), rtol=1e-9, atol=1e-9)
    tv.gradcheck(lambda a, g, b: F.batch_norm(a, weight=g, bias=b, training=True),
                 T(x, device), T(gamma, device), T(beta, device))
    rm_t, rv_t = T(rm, device), T(rv, device)
    tv.gradcheck(lambda a, g, b: F.batch_norm(a, rm_t, rv_t, g, b, training=False),
                 T(x, device), T(gamma, device), T(beta, device))


def test_batch_norm_running_statistics_follow_pytorch_convention(rng):
    x = rng.standard_normal((8, 3, 4, 4))
    rm, rv = np.zeros(3), np.ones(3)
    F.batch_norm(T(x), rm, rv, training=True, momentum=0.1)
    M = 8 * 16
    np.testing.assert_allclose(rm, 0.1 * x.mean((0, 2, 3)))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var((0, 2, 3)) * M / (M - 1))


def test_layer_norm(rng, device):
    x = rng.standard_normal((2, 3, 4))
    w, b = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    out = F.layer_norm(T(x, device), 4, T(w, device), T(b, device))
    np.testing.assert_allclose(out.numpy(), (x - mu) / np.sqrt(var + 1e-5) * w + b, rtol=1e-9, atol=1e-9)
    tv.gradcheck(lambda a, ww, bb: F.layer_norm(a, 4, ww, bb), T(x, device), T(w, device), T(b, device))
    w2 = rng.uniform(0.5, 1.5, (3, 4))
    tv.gradcheck(lambda a, ww: F.layer_norm(a, (3, 4), ww, T(np.zeros((3, 4)), device)),
                 T(x, device), T(w2, device))


# ------------------------------------------------------------------ gradcheck itself
def test_gradcheck_reports_a_wrong_backward():
    from tinyvision.tensor import Function

    class WrongSquare(Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, g):
            return g * self.a  # should be 2 a g

    x = tv.tensor(np.array([1.0, 2.0, 3.0]), dtype=np.float64)
    with pytest.raises(tv.GradcheckError, match=r"input 0 shape \(3,\).*analytic.*numeric.*MISMATCH"):
        tv.gradcheck(WrongSquare.apply, x)
    result = tv.gradcheck(WrongSquare.apply, x, raise_exception=False)
    assert not result and result.entries[0]["max_rel_error"] > 0.1


def test_gradcheck_uses_float64_and_only_flagged_inputs(rng):
    a = tv.tensor(rng.standard_normal(3), requires_grad=True)  # float32 in
    b = tv.tensor(rng.standard_normal(3))
    result = tv.gradcheck(lambda x, y: x * y, a, b)
    assert [e["input"] for e in result.entries] == [0]
