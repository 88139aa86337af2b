"""Shared fixtures: a seeded generator, and the backends to parametrise op tests over.

Tests marked ``gpu`` or parametrised with the 'cuda' backend skip with a reason where CuPy or
a GPU is missing, so the same suite runs everywhere.
"""
import numpy as np
import pytest

import tinyvision as tv

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def pytest_collection_modifyitems(config, items):
    if tv.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and an NVIDIA GPU (pip install 'tinyvision[gpu]')")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    tv.manual_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
