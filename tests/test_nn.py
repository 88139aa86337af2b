"""Tests of tinyvision.nn: module machinery, layers against NumPy references, and float64
gradient checks of input and parameter gradients."""
import numpy as np
import pytest

import tinyvision as tv
from tinyvision import nn

from references import conv_reference


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2, bias=False)))


# ---------------------------------------------------------------- module machinery
def test_registration_and_names():
    m = small_net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.1.weight"]
    assert list(m.state_dict()) == names
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert [n for n, _ in m.named_children()] == ["0", "1"]
    assert len(list(m.modules())) == 5
    assert m.num_parameters() == 4 * 3 * 9 + 4 + 4 * 2 + 2 + 4


def test_conv_and_linear_shapes_and_errors():
    m = small_net()
    assert m[0](tv.randn(2, 3, 5, 6)).shape == (2, 4, 5, 6)
    assert m[1](tv.randn(2, 7, 4)).shape == (2, 7, 2)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        m[0](tv.randn(2, 5, 5, 6))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        m[1][0](tv.randn(2, 3))


def test_train_eval_zero_grad_requires_grad_apply():
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    assert all(x.training for x in m.modules())
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    m(tv.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 0 and m.num_parameters() == 12 + 6
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Dropout", "BatchNorm1d", "Sequential"]


def test_shared_parameters_counted_once_and_buffers():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, lin)
    assert len(list(m.parameters())) == 2 and m.num_parameters() == 6
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    bn.register_buffer("cache", np.zeros(2), persistent=False)
    assert "cache" not in bn.state_dict() and len(list(bn.buffers())) == 4
    assert bn.state_dict()["num_batches_tracked"].dtype == np.int64


def test_setattr_errors_and_reassignment():
    class Net(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Net()
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="assign a Parameter or None"):
        lin.weight = tv.randn(2, 2)
    lin.bias = None
    assert "bias" not in lin.state_dict()
    del lin.weight
    assert list(lin.named_parameters()) == []


def test_to_dtype_moves_arrays_in_place():
    m = nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2))
    params = list(m.parameters())
    m(tv.randn(2, 2, 4, 4)).sum().backward()
    m.to(dtype=np.float64)
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert m[1].running_mean.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    assert m(tv.randn(1, 2, 4, 4, dtype=np.float64)).dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in params)


def test_float32_in_float32_out():
    x = tv.randn(2, 3, 8, 8)
    m = every_layer_model()
    assert m(x).dtype == np.float32
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_repr_tree():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                      nn.Sequential(nn.ReLU(), nn.Linear(8, 2)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Linear(in_features=8, out_features=2, bias=True)\n"
        "  )\n"
        ")")


def test_load_state_dict_copies_in_place_and_reports_all_problems():
    a, b = small_net(), small_net()
    w = b[0].weight
    b.load_state_dict(a.state_dict())
    assert b[0].weight is w
    np.testing.assert_array_equal(w.numpy(), a[0].weight.numpy())
    b.load_state_dict({k: tv.tensor(v) for k, v in a.state_dict().items()})  # Tensors work too

    sd = a.state_dict()
    del sd["0.bias"]
    sd["extra.weight"] = np.zeros(1)
    sd["1.0.weight"] = np.zeros((3, 4))
    before = b.state_dict()
    with pytest.raises(RuntimeError) as err:
        b.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys: 0.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "1.0.weight: checkpoint has shape (3, 4), the model has (2, 4)" in msg
    for k, v in b.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(v, before[k])
    del sd["1.0.weight"]
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["0.bias", "1.0.weight"] and unexpected == ["extra.weight"]


def test_state_dict_is_a_copy():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    sd["weight"][...] = 0
    assert np.abs(m.weight.numpy()).sum() > 0


def test_containers():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[-1], nn.Linear)
    head = s[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is s[2]
    assert [n for n, _ in head.named_children()] == ["1", "2"]
    with pytest.raises(IndexError):
        s[3]
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 3))
    ml.insert(0, nn.Identity())
    assert len(ml) == 3 and [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias", "2.weight", "2.bias"]
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.Linear(1, 2)
    assert "b" in md and list(md) == ["a", "b"] and len(list(md.parameters())) == 4


def test_sgd_reduces_loss():
    rng = np.random.default_rng(0)
    x = tv.tensor(rng.standard_normal((32, 4)))
    y = tv.tensor((x.numpy() @ [1.0, -2.0, 0.5, 1.0] > 0).astype(np.int64))  # a learnable rule
    m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(30):
        loss = loss_fn(m(x), y)
        losses.append(loss.item())
        m.zero_grad()
        loss.backward()
        with tv.no_grad():
            for p in m.parameters():
                p.data -= 0.5 * p.grad.data
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- initialisation
def test_init_scales_and_dtypes():
    w = nn.Parameter(np.empty((64, 32, 3, 3), dtype=np.float32))
    assert nn.init._calculate_fan_in_and_fan_out(w) == (32 * 9, 64 * 9)
    nn.init.kaiming_uniform_(w, a=5 ** 0.5)
    assert w.dtype == np.float32 and np.abs(w.numpy()).max() <= 1 / np.sqrt(32 * 9)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / (64 * 9))) < 0.05 * np.sqrt(2 / (64 * 9))
    nn.init.xavier_uniform_(w, gain=2.0)
    assert np.abs(w.numpy()).max() <= 2.0 * np.sqrt(6 / (32 * 9 + 64 * 9))
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=1.0)
    assert w.numpy().min() >= -0.5 and w.numpy().max() <= 1.0 and w.dtype == np.float32
    assert nn.init.calculate_gain("relu") == pytest.approx(2 ** 0.5)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx((2 / 1.04) ** 0.5)
    lin = nn.Linear(50, 10)
    assert np.abs(lin.bias.numpy()).max() <= 1 / np.sqrt(50)
    tv.manual_seed(3)
    a = nn.Linear(4, 4).weight.numpy()
    tv.manual_seed(3)
    np.testing.assert_array_equal(a, nn.Linear(4, 4).weight.numpy())


# ---------------------------------------------------------------- NumPy references
def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, dilation, groups):
    """Scatter form: each input pixel adds W[c, o'] x[n, c, i, j] at (i s - p + u d, j s - p + v d)."""
    N, C, H, W = x.shape
    _, Og, KH, KW = w.shape
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = stride, padding, output_padding, dilation
    Ho = (H - 1) * sh - 2 * ph + dh * (KH - 1) + oh + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (KW - 1) + ow + 1
    full = np.zeros((N, Og * groups, Ho + 2 * ph + KH * dh, Wo + 2 * pw + KW * dw))
    Cg = C // groups
    for n in range(N):
        for c in range(C):
            g = c // Cg
            for i in range(H):
                for j in range(W):
                    for u in range(KH):
                        for v in range(KW):
                            full[n, g * Og:(g + 1) * Og, i * sh + u * dh, j * sw + v * dw] += x[n, c, i, j] * w[c, :, u, v]
    return full[:, :, ph:ph + Ho, pw:pw + Wo] + b[None, :, None, None]


def pool_reference(x, k, s, p, reduce):
    N, C, H, W = x.shape
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    y = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            y[:, :, i, j] = reduce(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return y


def f64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CONV_CASES = [
    dict(kernel_size=3, stride=1, padding=0),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(2, 1)),
    dict(kernel_size=3, stride=1, padding=2, dilation=2),
    dict(kernel_size=(3, 2), stride=2, padding=1, groups=2),
]


@pytest.mark.parametrize("cfg", CONV_CASES)
def test_conv2d_matches_reference_and_gradcheck(cfg):
    conv = nn.Conv2d(4, 6, **cfg).to(dtype=np.float64)
    x = f64(2, 4, 5, 6)
    y = conv(tv.tensor(x, dtype=np.float64))
    ref = conv_reference(x, conv.weight.numpy(), conv.bias.numpy(), conv.stride, conv.padding,
                           conv.dilation, conv.groups)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
    gradcheck_module(conv, x)


@pytest.mark.parametrize("cfg", [
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=0),
    dict(kernel_size=3, stride=2, padding=1, groups=2, dilation=2, output_padding=1),
])
def test_conv_transpose2d_matches_reference_and_gradcheck(cfg):
    conv = nn.ConvTranspose2d(4, 6, **cfg).to(dtype=np.float64)
    x = f64(2, 4, 3, 4)
    y = conv(tv.tensor(x, dtype=np.float64))
    ref = conv_transpose2d_reference(x, conv.weight.numpy(), conv.bias.numpy(), conv.stride, conv.padding,
                                     conv.output_padding, conv.dilation, conv.groups)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
    gradcheck_module(conv, x)


def distinct_values(*shape, seed=0):
    """A random permutation of well-separated values: no ties inside a pooling window, and
    no maximum moves under a finite-difference step."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_matches_reference_and_gradcheck(k, s, p):
    x = distinct_values(2, 3, 5, 6)
    for layer, reduce in ((nn.MaxPool2d(k, s, p), np.max), (nn.AvgPool2d(k, s, p), np.mean)):
        y = layer(tv.tensor(x, dtype=np.float64))
        if reduce is np.mean:  # zero padding counts in the average: sum / k^2
            ref = pool_reference(x, k, s, p, np.sum) / (k * k)
        else:
            ref = pool_reference(x, k, s, p, np.max)
        np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)
        gradcheck_module(layer, x)


@pytest.mark.parametrize("out", [1, (2, 3), (3, 4)])
def test_adaptive_avg_pool(out):
    x = f64(2, 3, 6, 6)
    y = nn.AdaptiveAvgPool2d(out)(tv.tensor(x, dtype=np.float64)).numpy()
    Ho, Wo = (out, out) if isinstance(out, int) else out
    ref = np.zeros((2, 3, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            r0, r1 = i * 6 // Ho, -(-(i + 1) * 6 // Ho)
            c0, c1 = j * 6 // Wo, -(-(j + 1) * 6 // Wo)
            ref[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    np.testing.assert_allclose(y, ref, atol=1e-12)
    gradcheck_module(nn.AdaptiveAvgPool2d(out), x)


def test_batch_norm_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.2).to(dtype=np.float64)
    bn.weight.data[...] = [1.0, 2.0, 0.5]
    bn.bias.data[...] = [0.0, -1.0, 3.0]
    x = f64(4, 3, 2, 5) * 2 + 1
    def reference(mean, var):
        c = (slice(None), None, None)  # per-channel values broadcast over (H, W)
        return (x - mean[c]) / np.sqrt(var[c] + 1e-5) * bn.weight.numpy()[c] + bn.bias.numpy()[c]

    y = bn(tv.tensor(x, dtype=np.float64)).numpy()
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, reference(mu, var), atol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.8 * 0 + 0.2 * mu)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.8 * 1 + 0.2 * x.var(axis=(0, 2, 3), ddof=1))
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    y = bn(tv.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(y, reference(bn.running_mean.numpy(), bn.running_var.numpy()), atol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 1


def test_batch_norm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [f64(5, 2, seed=s) for s in range(3)]
    for x in xs:
        bn(tv.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert free.state_dict().keys() == {"weight", "bias"}
    y = free(tv.tensor(xs[0])).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 2\) or \(N, 2, L\)"):
        bn(tv.randn(2, 3))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layer", [lambda: nn.BatchNorm2d(3), lambda: nn.BatchNorm1d(3)])
def test_batch_norm_gradcheck(layer, training):
    bn = layer().to(dtype=np.float64)
    bn.running_mean.data[...] = [0.1, -0.2, 0.3]
    bn.running_var.data[...] = [0.5, 2.0, 1.5]
    bn.train(training)
    x = f64(4, 3, 2, 3) if isinstance(bn, nn.BatchNorm2d) else f64(4, 3, 5)
    gradcheck_module(bn, x)


def test_layer_norm_reference_and_gradcheck():
    ln = nn.LayerNorm((3, 4)).to(dtype=np.float64)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = f64(2, 5, 3, 4)
    y = ln(tv.tensor(x, dtype=np.float64)).numpy()
    mu, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * ln.weight.numpy() + ln.bias.numpy(), atol=1e-10)
    gradcheck_module(ln, f64(2, 2, 3, 4))
    gradcheck_module(nn.LayerNorm(4, bias=False).to(np.float64), f64(3, 4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 4\)"):
        ln(tv.randn(2, 4, 3))


def test_linear_3d_gradcheck():
    gradcheck_module(nn.Linear(4, 3), f64(2, 5, 4))


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="nearest"), dict(size=(7, 5), mode="nearest"),
                                dict(scale_factor=2, mode="bilinear"), dict(size=(7, 9), mode="bilinear"),
                                dict(size=(7, 9), mode="bilinear", align_corners=True)])
def test_upsample_gradcheck(kw):
    gradcheck_module(nn.Upsample(**kw), f64(2, 2, 3, 4))


def test_bilinear_reference_values():
    x = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    # align_corners=False, 2 -> 4: source coordinates max((i + 0.5) / 2 - 0.5, 0) = 0, .25, .75, 1.25 (-> clamp)
    y = nn.Upsample(scale_factor=2, mode="bilinear")(tv.tensor(x, dtype=np.float64)).numpy()[0, 0]
    np.testing.assert_allclose(y[0], [0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(y[:, 0], [0, 0.5, 1.5, 2.0])
    # align_corners=True, 2 -> 3: source coordinates 0, 0.5, 1
    y = nn.Upsample(size=3, mode="bilinear", align_corners=True)(tv.tensor(x, dtype=np.float64)).numpy()[0, 0]
    np.testing.assert_allclose(y, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    y = nn.Upsample(scale_factor=2)(tv.tensor(x, dtype=np.float64)).numpy()[0, 0]
    np.testing.assert_array_equal(y, np.kron(x[0, 0], np.ones((2, 2))))


def test_embedding_accumulates_repeated_rows():
    emb = nn.Embedding(5, 3)
    idx = np.array([[1, 3, 1], [1, 0, 4]])
    y = emb(tv.tensor(idx))
    np.testing.assert_array_equal(y.numpy(), emb.weight.numpy()[idx])
    g = f64(2, 3, 3).astype(np.float32)
    y.backward(g)
    np.testing.assert_allclose(emb.weight.grad.numpy()[1], g[0, 0] + g[0, 2] + g[1, 0], rtol=1e-6)
    np.testing.assert_array_equal(emb.weight.grad.numpy()[2], 0)
    emb.to(np.float64)
    tv.gradcheck(lambda w: w[idx], emb.weight.data)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        emb(np.array([5]))
    with pytest.raises(TypeError, match="integer"):
        emb(tv.randn(3))


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid(),
                                   nn.Tanh(), nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Flatten(),
                                   nn.Identity()])
def test_activation_gradcheck(layer):
    x = f64(2, 3, 4) + 0.05  # keep relu kinks away from the finite-difference steps
    gradcheck_module(layer, x)


def test_dropout_train_and_eval():
    d = nn.Dropout(0.5)
    x = tv.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    assert d.eval()(x) is x


def test_losses():
    logits, target = f64(4, 3), np.array([0, 2, 1, 2])
    ce = nn.CrossEntropyLoss()(tv.tensor(logits, dtype=np.float64), tv.tensor(target)).item()
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert ce == pytest.approx(-logp[np.arange(4), target].mean())
    smooth = nn.CrossEntropyLoss(label_smoothing=0.3)(tv.tensor(logits, dtype=np.float64), tv.tensor(target)).item()
    q = 0.7 * np.eye(3)[target] + 0.3 / 3                            # the smoothed target distribution
    assert smooth == pytest.approx(-(q * logp).sum(1).mean()) and smooth != pytest.approx(ce)
    a, b = f64(2, 3), f64(2, 3, seed=1)
    assert nn.MSELoss()(tv.tensor(a), tv.tensor(b)).item() == pytest.approx(((a - b) ** 2).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        nn.MSELoss()(tv.randn(2, 3), tv.randn(3, 2))


def test_functional_names():
    F = nn.functional
    x = tv.randn(2, 3, 4, 5)
    assert F.pad(x, (1, 2, 3, 4)).shape == (2, 3, 11, 8)
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy().sum(1), 1, rtol=1e-6)
    assert F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).shape == (2, 3, 8, 10)
    assert F.adaptive_avg_pool2d(x, 1).shape == (2, 3, 1, 1)
    for name in ["relu", "gelu", "log_softmax", "cross_entropy", "mse_loss", "conv2d", "conv_transpose2d",
                 "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dropout", "linear"]:
        assert callable(getattr(F, name))


# ---------------------------------------------------------------- helpers
def gradcheck_module(module, *inputs):
    """tv.gradcheck of a layer's output with respect to its inputs AND its parameters: the
    parameters are passed to gradcheck as inputs and swapped into the module for each call."""
    module.to(dtype=np.float64)
    owners = [(m, name) for m in module.modules() for name, p in m._parameters.items() if p is not None]
    originals = [m._parameters[name] for m, name in owners]

    def fn(*args):
        xs, ps = args[:len(inputs)], args[len(inputs):]
        for (m, name), p in zip(owners, ps):
            m._parameters[name] = p
        return module(*xs)

    try:
        tv.gradcheck(fn, *inputs, *[p.data.copy() for p in originals])
    finally:
        for (m, name), p in zip(owners, originals):
            m._parameters[name] = p


def every_layer_model():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.ConvTranspose2d(4, 4, 2, stride=2), nn.AvgPool2d(2), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(4, 6), nn.LayerNorm(6),
        nn.BatchNorm1d(6), nn.GELU(), nn.Linear(6, 3), nn.Softmax(dim=1))


@pytest.mark.gpu
def test_cuda_round_trip():
    m = every_layer_model()
    params = list(m.parameters())
    m.to("cuda")
    assert all(p.device == "cuda" for p in m.parameters()) and list(m.parameters()) == params
    assert m[1].running_mean.device == "cuda"
    x = tv.randn(2, 3, 8, 8, device="cuda")
    m(x).sum().backward()
    assert m[0].weight.grad.device == "cuda"
    sd = m.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    cpu = every_layer_model()
    cpu.load_state_dict(sd)
    m.eval(), cpu.eval()
    np.testing.assert_allclose(m(x).numpy(), cpu(tv.tensor(x.numpy())).numpy(), rtol=1e-4, atol=1e-5)
    w = nn.Parameter(tv.zeros(64, 32, device="cuda"))
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=1.0)
    assert w.device == "cuda" and w.dtype == np.float32 and float(w.data.min()) >= -0.5
    emb = nn.Embedding(5, 3).to("cuda")
    assert emb(tv.tensor(np.array([1, 1, 4]), device="cuda")).shape == (3, 3)
