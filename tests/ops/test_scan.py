"""Mamba's selective scan and causal depthwise conv1d: torch parity (forward, backward, float64/float32),
gradcheck, the numba kernel against its NumPy twin, carried state, and shape errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from neural_arch.backend.kernels import scan as kernels
from neural_arch.errors import ShapeError
from neural_arch.ops.scan import causal_depthwise_conv1d, selective_scan
from parity import check, gradcheck, rand_pos, randn

Bt, L, D, N, K = 2, 7, 3, 4, 4


def scan_inputs(seed=0, length=L):
    return [randn(Bt, length, D, seed=seed), rand_pos(Bt, length, D, seed=seed + 1, low=0.05, high=1.0),
            -rand_pos(D, N, seed=seed + 2, low=0.2, high=2.0), randn(Bt, length, N, seed=seed + 3),
            randn(Bt, length, N, seed=seed + 4)]


def torch_scan(u, delta, A, B, C, h0=None):
    """The recurrence spelled out in torch, as transformers' slow path."""
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], dtype=u.dtype) if h0 is None else h0
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("use_kernel", [True, False], ids=["numba", "numpy"])
def test_scan_matches_torch_forward_and_backward(use_kernel, monkeypatch):
    if not use_kernel:
        monkeypatch.setattr(kernels, "_compiled", False)
    check(selective_scan, scan_inputs(), torch_fn=torch_scan, rtol=1e-4, atol=1e-5, dtypes=(np.float32,))
    check(selective_scan, scan_inputs(seed=5), torch_fn=torch_scan)


def test_scan_gradcheck_both_paths(monkeypatch):
    assert gradcheck(selective_scan, scan_inputs(length=4))
    monkeypatch.setattr(kernels, "_compiled", False)
    assert gradcheck(selective_scan, scan_inputs(seed=9, length=4))


def test_kernel_equals_numpy_twin():
    if kernels._kernels() is None:
        pytest.skip("numba kernels switched off (NEURAL_ARCH_JIT=0)")
    u, delta, A, B, C = [x.astype(np.float32) for x in scan_inputs(length=11)]
    h0 = randn(Bt, D, N, seed=7).astype(np.float32)
    y, last = kernels.scan_forward(u, delta, A, B, C, h0)
    y_ref, last_ref = kernels.scan_forward_numpy(u, delta, A, B, C, h0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last, last_ref, rtol=1e-5, atol=1e-6)
    gy = randn(Bt, 11, D, seed=8).astype(np.float32)
    for a, b in zip(kernels.scan_backward(gy, u, delta, A, B, C, h0),
                    kernels.scan_backward_numpy(gy, u, delta, A, B, C, h0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_scan_in_pieces_with_carried_state_equals_one_pass():
    import neural_arch as na

    arrays = scan_inputs(length=9)
    whole = selective_scan(*[na.tensor(a) for a in arrays]).numpy()
    first = [na.tensor(a[:, :5]) if a.ndim == 3 else na.tensor(a) for a in arrays]
    second = [na.tensor(a[:, 5:]) if a.ndim == 3 else na.tensor(a) for a in arrays]
    y1, state = selective_scan(*first, return_last_state=True)
    y2, _ = selective_scan(*second, initial_state=state, return_last_state=True)
    np.testing.assert_allclose(np.concatenate([y1.numpy(), y2.numpy()], axis=1), whole, rtol=1e-12)


def conv_inputs(seed=0):
    return [randn(Bt, L, D, seed=seed), randn(D, K, seed=seed + 1), randn(D, seed=seed + 2)]


def torch_conv(x, w, b):
    """torch's causal depthwise conv, as Mamba calls it: (B, C, L) layout, padding K-1, the tail cut off."""
    y = TF.conv1d(x.transpose(1, 2), w[:, None, :], b, padding=K - 1, groups=D)[..., :L]
    return y.transpose(1, 2)


def test_causal_depthwise_conv1d_matches_torch_and_gradcheck():
    check(causal_depthwise_conv1d, conv_inputs(), torch_fn=torch_conv)
    check(lambda x, w: causal_depthwise_conv1d(x, w), conv_inputs()[:2],
          torch_fn=lambda x, w: torch_conv(x, w, None))
    assert gradcheck(causal_depthwise_conv1d, conv_inputs(seed=3))


def test_conv_prefix_continues_the_sequence():
    import neural_arch as na

    x, w, b = (na.tensor(a) for a in conv_inputs())
    whole = causal_depthwise_conv1d(x, w, b).numpy()
    tail = causal_depthwise_conv1d(x[:, 4:], w, b, prefix=x.numpy()[:, 4 - (K - 1):4]).numpy()
    np.testing.assert_allclose(tail, whole[:, 4:], rtol=1e-12)


def test_shape_errors_name_the_argument():
    import neural_arch as na

    u, delta, A, B, C = (na.tensor(a) for a in scan_inputs())
    with pytest.raises(ShapeError, match="B must have shape"):
        selective_scan(u, delta, A, C[:, :, :2], C)
    with pytest.raises(ShapeError, match="initial_state"):
        selective_scan(u, delta, A, B, C, initial_state=np.zeros((Bt, D, N + 1)))
    x, w, b = (na.tensor(a) for a in conv_inputs())
    with pytest.raises(ShapeError, match="causal_depthwise_conv1d"):
        causal_depthwise_conv1d(x[..., :2], w, b)
