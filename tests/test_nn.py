"""Tests of tinyvision.nn: module machinery, layers against NumPy references, and float64
gradient checks of input and parameter gradients."""
import numpy as np
import pytest

import tinyvision as tv
from tinyvision import nn


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
