"""The engine: graph recording, backward, accumulation, memory, devices and errors."""
import gc
import inspect
import weakref

import numpy as np
import pytest

import tinyvision as tv
from tinyvision.tensor import Function


def test_float32_default_and_float64_on_request():
    assert tv.tensor([1.0, 2.0]).dtype == np.float32
    assert tv.tensor(np.zeros(3)).dtype == np.float32
    assert tv.tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    assert tv.tensor([1, 2]).dtype.kind == "i"
    assert tv.zeros(2, 3).shape == (2, 3) and tv.ones((2, 3), dtype=np.float64).dtype == np.float64


def test_properties_and_repr():
    x = tv.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert (x.shape, x.ndim, x.size, x.device) == ((2, 3), 2, 6, "cpu")
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=Mul" in repr(x * 2)
    assert tv.tensor([[3.5]]).item() == 3.5
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_python_scalar_keeps_float32():
    x = tv.tensor([1.0, 2.0])
    for y in (x * 0.5, 0.5 * x, x + 1, x / 3.0, x ** 2, 1.0 - x, x * np.float64(0.1)):
        assert y.dtype == np.float32


def test_backward_simple_chain():
    x = tv.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x * x * 3.0 + x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy() + 1)


def test_gradients_accumulate_across_backward_calls():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_tensor_reused_in_several_places():
    x = tv.tensor([2.0], requires_grad=True)
    a = x * x
    y = a * x + a + x  # x^3 + x^2 + x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 * 4 + 2 * 2 + 1])


def test_the_engine_imports_no_threading():
    # Gradients of a reused tensor are summed with a plain +: thread splitting lives in the
    # fast kernels only, never in the engine a student reads.
    import ast
    import tinyvision.tensor
    tree = ast.parse(inspect.getsource(tinyvision.tensor))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {node.module or ""} | {alias.name for alias in node.names}
    assert not names & {"parallel", "threading", "concurrent.futures", "kernels"}, names


def test_broadcasting_is_undone_on_the_way_back():
    a = tv.tensor(np.ones((4, 3)), requires_grad=True)
    b = tv.tensor(np.ones((3,)), requires_grad=True)
    c = tv.tensor(np.ones((4, 1)), requires_grad=True)
    (a * b + c).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == (4, 1)
    np.testing.assert_allclose(b.grad.numpy(), [4, 4, 4])
    np.testing.assert_allclose(c.grad.numpy(), [[3]] * 4)


def test_retain_graph_allows_second_backward():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_graph_is_freed_after_backward():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp()).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_saved_arrays_are_freed_after_backward():
    class Twice(Function):
        def forward(self, a):
            self.saved = a * 2.0
            return self.saved

        def backward(self, g):
            return g * 2.0

    x = tv.tensor(np.random.rand(1000), requires_grad=True)
    y = Twice.apply(x)
    ctx = y._ctx
    saved = weakref.ref(ctx.saved) if hasattr(ctx.saved, "__weakref__") else None
    z = y.sum()
    del y
    z.backward()
    gc.collect()
    assert "saved" not in ctx.__dict__ and ctx.parents is None
    assert saved is None or saved() is None


def test_no_grad_records_nothing():
    x = tv.tensor([1.0], requires_grad=True)
    with tv.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._ctx is None

    @tv.no_grad()
    def f(t):
        return t * 3.0
    assert not f(x).requires_grad
    assert tv.is_grad_enabled()
    # the decorated function keeps its name, docstring and signature (help(), tracebacks)
    assert f.__name__ == "f" and str(inspect.signature(f)) == "(t)"


def test_detach_cuts_the_graph():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    y = x.detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])


def test_long_chain_has_no_recursion_error():
    x = tv.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(2000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_backward_on_non_scalar_needs_gradient():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar output"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_without_grad_requirement_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tv.tensor([1.0]).sum().backward()


def test_retain_grad_on_intermediate():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3.0).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        tv.tensor([1, 2], requires_grad=True)


def test_cuda_request_without_gpu_says_how_to_install():
    if tv.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=r"pip install 'tinyvision\[gpu\]'"):
        tv.tensor([1.0], device="cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        tv.set_default_device("cuda")
    assert tv.get_default_device() == "cpu"


def test_unknown_device_rejected():
    with pytest.raises(ValueError, match="unknown device"):
        tv.tensor([1.0], device="tpu")


@pytest.mark.gpu
def test_mixed_devices_error_names_both_and_to():
    a = tv.tensor([1.0], device="cpu")
    b = tv.tensor([1.0], device="cuda")
    with pytest.raises(RuntimeError, match=r"cpu and cuda.*\.to\("):
        a + b


@pytest.mark.gpu
def test_to_device_round_trip_and_gradient():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    y = (x.to("cuda") * 2.0).sum()
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_to_dtype_is_differentiable():
    x = tv.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3.0
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_manual_seed_reproduces_random_numbers():
    tv.manual_seed(123)
    a = tv.randn(5).numpy()
    tv.manual_seed(123)
    b = tv.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    assert tv.randn(3).dtype == np.float32


def test_comparisons_give_boolean_tensors():
    x = tv.tensor([1.0, 2.0, 3.0])
    assert (x > 1.5).numpy().tolist() == [False, True, True]
    assert x.argmax().item() == 2
