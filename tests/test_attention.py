"""Attention (fused op and module) and position encodings: gradchecks, NumPy references,
hand-checked values."""
import math

import numpy as np
import pytest

import tinyvision as tv
from tinyvision import nn
from tinyvision.nn.attention import scaled_dot_product_attention as sdpa


def _t(rng, *shape):
    return tv.Tensor(rng.standard_normal(shape), dtype=np.float64)


def _reference(q, k, v, mask=None, bias=None):
    """softmax(Q K^T / sqrt(d) + bias, masked) V and A in NumPy."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        s = s + bias
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    return a @ v, a


def _mask(rng, shape):
    m = rng.random(shape) > 0.4
    m[..., 0] = True  # every query sees at least one key
    return m


# ---------------------------------------------------------------- the fused op
def test_sdpa_matches_numpy_reference(rng):
    q, k, v = _t(rng, 2, 3, 5, 4), _t(rng, 2, 3, 7, 4), _t(rng, 2, 3, 7, 6)
    bias, mask = rng.standard_normal((3, 5, 7)), _mask(rng, (2, 1, 5, 7))
    out = sdpa(q, k, v, mask=mask, bias=tv.Tensor(bias, dtype=np.float64))
    ref, _ = _reference(q.numpy(), k.numpy(), v.numpy(), mask, bias)
    assert out.shape == (2, 3, 5, 6)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("with_mask, with_bias", [(False, False), (True, False), (False, True), (True, True)])
def test_sdpa_gradcheck(rng, with_mask, with_bias):
    q, k, v = _t(rng, 2, 2, 4, 3), _t(rng, 2, 2, 5, 3), _t(rng, 2, 2, 5, 2)
    mask = _mask(rng, (2, 1, 4, 5)) if with_mask else None
    if with_bias:
        tv.gradcheck(lambda q, k, v, b: sdpa(q, k, v, mask=mask, bias=b), q, k, v, _t(rng, 2, 4, 5))
    else:
        tv.gradcheck(lambda q, k, v: sdpa(q, k, v, mask=mask), q, k, v)


def test_sdpa_gradients_match_composed_ops_with_dropout(rng):
    # With dropout the op is random; reseeding draws the same mask for both runs, and the
    # composed reference uses the same mask through the same draw order (softmax, then rand).
    q, k, v = (tv.Tensor(rng.standard_normal((2, 3, 6, 4)), dtype=np.float64, requires_grad=True) for _ in range(3))
    g = rng.standard_normal((2, 3, 6, 4))
    tv.manual_seed(5)
    sdpa(q, k, v, dropout_p=0.3, training=True).backward(g)
    fused = [t.grad.numpy() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    tv.manual_seed(5)
    a = tv.softmax(tv.matmul(q, k.transpose(-2, -1)) * (1 / 2.0), axis=-1)
    tv.matmul(tv.ops.dropout(a, 0.3, training=True), v).backward(g)
    for f, t in zip(fused, (q, k, v)):
        np.testing.assert_allclose(f, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_float32_and_errors(rng):
    q = tv.randn(2, 5, 8)
    assert sdpa(q, q, q).dtype == np.float32
    with pytest.raises(ValueError, match="same feature"):
        sdpa(q, tv.randn(2, 5, 4), q)
    with pytest.raises(TypeError, match="boolean"):
        sdpa(q, q, q, mask=np.ones((5, 5)))


# ---------------------------------------------------------------- the module
def _module(dim=8, heads=2, **kw):
    return nn.MultiheadSelfAttention(dim, heads, **kw).to(np.float64)


def test_attention_rows_sum_to_one_and_masked_keys_get_zero_weight(rng):
    m = _module()
    x = _t(rng, 3, 5, 8)
    key_padding = np.ones((3, 1, 1, 5), bool)
    key_padding[0, ..., 3:] = False          # sample 0 has two padding tokens
    out, attn = m(x, mask=key_padding, return_attention=True)
    a = attn.numpy()
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-12)
    assert np.all(a[0, :, :, 3:] == 0.0) and np.all(a[1:] > 0)
    np.testing.assert_allclose(m(x, mask=key_padding).numpy(), out.numpy(), rtol=1e-12, atol=1e-14)


def test_module_matches_numpy_multihead_formula(rng):
    m = _module()
    x = _t(rng, 2, 5, 8)
    W, b = m.qkv.weight.numpy(), m.qkv.bias.numpy()
    xn = x.numpy()
    heads = []
    for i in range(2):   # head_i = Attention(X W_i^Q, X W_i^K, X W_i^V): column blocks of the fused qkv
        q, k, v = (xn @ W[j * 8 + i * 4: j * 8 + i * 4 + 4].T + b[j * 8 + i * 4: j * 8 + i * 4 + 4] for j in range(3))
        heads.append(_reference(q, k, v)[0])
    ref = np.concatenate(heads, axis=-1) @ m.proj.weight.numpy().T + m.proj.bias.numpy()
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-12, atol=1e-13)


def test_module_gradcheck_input_and_parameters(rng):
    m = _module(rel_pos_bias=nn.RelativePositionBias((2, 2), 2).to(np.float64))
    x = _t(rng, 2, 4, 8)
    mask = _mask(rng, (2, 1, 4, 4))
    tv.gradcheck(lambda x: m(x, mask=mask), x)
    params = [m.qkv.weight, m.qkv.bias, m.proj.weight, m.rel_pos_bias.relative_position_bias_table]
    # gradcheck perturbs its own float64 copies: route them into the module's parameters
    copies = [tv.Tensor(p.numpy(), dtype=np.float64, requires_grad=True) for p in params]
    tv.gradcheck(lambda x, *ps: _bind(m, params, ps, lambda: m(x, mask=mask)), x.detach(), *copies)


def _bind(module, params, values, fn):
    """Run fn with the module's parameters replaced by the given Tensors (for gradcheck)."""
    owners = {id(p): (mod, name) for mod in module.modules() for name, p in mod._parameters.items()}
    saved = []
    for p, val in zip(params, values):
        mod, name = owners[id(p)]
        saved.append((mod, name, p))
        mod._parameters[name] = val
    try:
        return fn()
    finally:
        for mod, name, p in saved:
            mod._parameters[name] = p


def test_module_errors():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadSelfAttention(10, 3)
    with pytest.raises(ValueError, match=r"\(B, N, 8\)"):
        nn.MultiheadSelfAttention(8, 2)(tv.randn(2, 5, 6))


# ---------------------------------------------------------------- position encodings
def test_sincos_1d_hand_checked_values():
    pe = nn.sincos_1d(5, 6)
    assert pe.shape == (5, 6) and pe.dtype == np.float32
    np.testing.assert_allclose(pe[0], [0, 1, 0, 1, 0, 1], atol=1e-7)
    # pos 1: frequencies 1, 10000^(-2/6), 10000^(-4/6)
    f = [1.0, 10000 ** (-2 / 6), 10000 ** (-4 / 6)]
    np.testing.assert_allclose(pe[1], [math.sin(f[0]), math.cos(f[0]), math.sin(f[1]), math.cos(f[1]),
                                       math.sin(f[2]), math.cos(f[2])], rtol=1e-6)
    np.testing.assert_allclose(pe[3, 0], math.sin(3.0), rtol=1e-6)
    with pytest.raises(ValueError, match="even"):
        nn.sincos_1d(4, 5)


def test_sincos_2d_rows_then_columns():
    pe = nn.sincos_2d((2, 3), 8)
    assert pe.shape == (6, 8)
    # token 5 is row 1, column 2: first half codes row 1, second half column 2
    np.testing.assert_allclose(pe[5, :4], nn.sincos_1d(2, 4)[1])
    np.testing.assert_allclose(pe[5, 4:], nn.sincos_1d(3, 4)[2])
    np.testing.assert_array_equal(pe[0, 4:], pe[3, 4:])   # same column, other row
    np.testing.assert_array_equal(pe[0, :4], pe[2, :4])   # same row, other column
    with pytest.raises(ValueError, match="divisible by 4"):
        nn.sincos_2d((2, 2), 6)


def test_position_embedding_modules():
    x = tv.zeros(2, 7, 8)
    fixed = nn.SinCosPositionEmbedding2d((2, 3), 8, num_prefix_tokens=1)
    y = fixed(x).numpy()
    np.testing.assert_array_equal(y[1, 0], 0.0)
    np.testing.assert_array_equal(y[0, 1:], nn.sincos_2d((2, 3), 8))
    assert list(fixed.parameters()) == [] and "pos_embed" not in fixed.state_dict()
    one_d = nn.SinCosPositionEmbedding1d(7, 8)
    np.testing.assert_array_equal(one_d(x).numpy()[0], nn.sincos_1d(7, 8))
    learned = nn.LearnedPositionEmbedding(7, 8)
    assert [n for n, _ in learned.named_parameters()] == ["pos_embed"]
    learned(x).sum().backward()
    np.testing.assert_array_equal(learned.pos_embed.grad.numpy(), 2.0)
    with pytest.raises(ValueError, match=r"\(B, 7, 8\)"):
        learned(tv.zeros(2, 6, 8))


def test_relative_position_index_properties():
    h, w = 3, 4
    idx = nn.relative_position_index(h, w)
    n = h * w
    assert idx.shape == (n, n) and idx.min() == 0 and idx.max() == (2 * h - 1) * (2 * w - 1) - 1
    center = (h - 1) * (2 * w - 1) + (w - 1)          # offset (0, 0)
    np.testing.assert_array_equal(np.diag(idx), center)
    # offset (i -> j) is the negation of (j -> i): mirrored about the centre row of the table
    np.testing.assert_array_equal(idx + idx.T, 2 * center)
    # pairs with the same offset share an entry: token (0,0)->(1,1) and (1,2)->(2,3)
    assert idx[0, 1 * w + 1] == idx[1 * w + 2, 2 * w + 3]
    assert len(np.unique(idx)) == (2 * h - 1) * (2 * w - 1)


def test_relative_position_bias_gathers_the_table(rng):
    rpb = nn.RelativePositionBias((2, 3), num_heads=4).to(np.float64)
    bias = rpb()
    table = rpb.relative_position_bias_table.numpy()
    idx = nn.relative_position_index(2, 3)
    assert bias.shape == (4, 6, 6)
    np.testing.assert_array_equal(bias.numpy(), table[idx].transpose(2, 0, 1))
    assert "relative_position_bias_table" in rpb.state_dict() and "relative_position_index" not in rpb.state_dict()
    tv.gradcheck(lambda t: _bind(rpb, [rpb.relative_position_bias_table], [t], rpb),
                 tv.Tensor(table, dtype=np.float64, requires_grad=True))
