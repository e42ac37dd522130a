"""Devices: parsing, equality, and the CuPy-less path (typed errors with an install hint)."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch.backend import Device, array_namespace, cuda_is_available, device_of, namespace_for, to_numpy
from neural_arch.errors import DeviceError


def test_device_parsing_and_equality():
    assert Device("cpu") == "cpu" and Device("cpu") == Device(Device("cpu"))
    d = Device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and str(d) == "cuda:1" and repr(d) == "device(type='cuda', index=1)"
    assert Device("cuda") == "cuda:0" and Device("cuda:0") != "cuda:1" and Device("cpu") != "cuda"
    assert Device("cpu") != "not a device"
    assert na.device("cpu") == "cpu"  # torch's spelling


@pytest.mark.parametrize("spec,pattern", [("tpu", "unknown device 'tpu'"), ("cuda:x", "bad device index"),
                                          ("cpu:2", "no index 2"), (3, "device must be a string")])
def test_bad_devices_raise_device_error(spec, pattern):
    with pytest.raises(DeviceError, match=pattern):
        Device(spec)


def test_cpu_namespace_is_numpy():
    assert namespace_for("cpu") is np and array_namespace(np.ones(2)) is np and array_namespace(1.0) is np
    assert device_of(np.ones(2)) == "cpu"
    a = np.ones(2)
    assert to_numpy(a) is a and isinstance(to_numpy([1, 2]), np.ndarray)


def test_cuda_namespace_without_cupy_names_the_fix():
    if cuda_is_available():
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(DeviceError, match=r"device 'cuda:0' needs CuPy.*pip install cupy-cuda12x.*device='cpu'"):
        namespace_for("cuda:0")


@pytest.mark.gpu
def test_cuda_round_trip_when_available():
    if not cuda_is_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    x = na.randn(3, 4, requires_grad=True)
    y = x.to("cuda")
    assert y.device.type == "cuda"
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy(), rtol=1e-6)
    with pytest.raises(DeviceError, match="different devices"):
        y + na.ones(3, 4)
