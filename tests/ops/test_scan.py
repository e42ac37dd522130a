"""Mamba's selective scan and causal depthwise conv1d: torch parity (forward, backward, float64/float32),
gradcheck, on both implementations (the ``impl`` fixture), carried state, and shape errors. The kernel
against its twin on raw arrays: tests/backend/kernels/test_scan.py."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from neural_arch.backend import kernels
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


def test_scan_matches_torch_forward_and_backward(impl):
    before = kernels.calls["scan_forward"], kernels.calls["scan_backward"]
    check(selective_scan, scan_inputs(), torch_fn=torch_scan, rtol=1e-4, atol=1e-5, dtypes=(np.float32,))
    ran = kernels.calls["scan_forward"] - before[0], kernels.calls["scan_backward"] - before[1]
    assert ran == ((1, 1) if impl == "kernel" else (0, 0))
    check(selective_scan, scan_inputs(seed=5), torch_fn=torch_scan)  # float64 and float32


def test_scan_gradcheck():
    assert gradcheck(selective_scan, scan_inputs(length=4))  # float64: the twin (the kernels run float32)


def test_scan_in_pieces_with_carried_state_equals_one_pass(impl):
    import neural_arch as na

    arrays = [a.astype(np.float32) for a in scan_inputs(length=9)]
    whole = selective_scan(*[na.tensor(a) for a in arrays]).numpy()
    first = [na.tensor(a[:, :5]) if a.ndim == 3 else na.tensor(a) for a in arrays]
    second = [na.tensor(a[:, 5:]) if a.ndim == 3 else na.tensor(a) for a in arrays]
    y1, state = selective_scan(*first, return_last_state=True)
    y2, _ = selective_scan(*second, initial_state=state, return_last_state=True)
    np.testing.assert_allclose(np.concatenate([y1.numpy(), y2.numpy()], axis=1), whole, rtol=1e-6, atol=1e-6)


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
