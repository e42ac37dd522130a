"""The numba Adam/AdamW step (float32 parameters of >= 1024 elements) against torch's trajectories
and against our NumPy step (kernels switched off)."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch import optim
from neural_arch.backend import kernels

pytestmark = pytest.mark.skipif(kernels.get() is None, reason="numba not installed or NEURAL_ARCH_JIT=0")

CONFIGS = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.05)),
    ("AdamW", dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, amsgrad=True)),
]


def _trajectory(lib_opt, make_param, grads):
    p = make_param()
    opt = lib_opt([p])
    for g in grads:
        opt.zero_grad()
        p.grad = g(p)
        opt.step()
    return p.detach().numpy().copy()


@pytest.mark.parametrize("name,kw", CONFIGS)
def test_fused_adam_matches_torch_and_numpy_step(name, kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((40, 64)).astype(np.float32)  # 2560 elements: the kernel path
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(15)]
    ours = _trajectory(lambda ps: getattr(optim, name)(ps, **kw), lambda: na.nn.Parameter(na.tensor(p0.copy())),
                       [lambda p, g=g: na.tensor(g) for g in gs])
    ref = _trajectory(lambda ps: getattr(torch.optim, name)(ps, **kw),
                      lambda: torch.nn.Parameter(torch.tensor(p0.copy())), [lambda p, g=g: torch.tensor(g) for g in gs])
    kernels.set_enabled(False)
    try:
        numpy_path = _trajectory(lambda ps: getattr(optim, name)(ps, **kw),
                                 lambda: na.nn.Parameter(na.tensor(p0.copy())), [lambda p, g=g: na.tensor(g) for g in gs])
    finally:
        kernels.set_enabled(True)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours, numpy_path, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad_order", ["F", "C"])
def test_fused_adam_on_column_major_parameters(grad_order, monkeypatch):
    """nn.Linear's weights are column-major: the kernel walks them (and their state) in memory order,
    and a gradient of the other layout is converted, not misread."""
    from neural_arch.optim import adam

    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((40, 64)).astype(np.float32)
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(5)]
    used = []
    real = adam.Adam._fused_step
    monkeypatch.setattr(adam.Adam, "_fused_step", staticmethod(lambda *a: used.append(real(*a)) or used[-1]))
    column = _trajectory(lambda ps: optim.AdamW(ps, lr=1e-2, amsgrad=True),
                         lambda: na.nn.Parameter(np.asfortranarray(p0)),
                         [lambda p, g=g: na.Tensor(np.asarray(g, order=grad_order)) for g in gs])
    assert used and all(used), "the fused step should have run"
    row = _trajectory(lambda ps: optim.AdamW(ps, lr=1e-2, amsgrad=True), lambda: na.nn.Parameter(p0.copy()),
                      [lambda p, g=g: na.Tensor(g) for g in gs])
    np.testing.assert_array_equal(column, row)


def test_restored_state_takes_the_parameters_layout(tmp_path):
    lin = na.nn.Linear(64, 40)
    opt = optim.Adam(lin.parameters(), lr=1e-2)
    lin(na.randn(8, 64)).sum().backward()
    opt.step()
    na.save(opt.state_dict(), tmp_path / "opt.safetensors")  # files hold row-major arrays
    fresh = optim.Adam(lin.parameters(), lr=1e-2)
    fresh.load_state_dict(na.load(tmp_path / "opt.safetensors"))
    state = fresh.state[lin.weight]
    assert state["exp_avg"].flags.f_contiguous and state["exp_avg_sq"].flags.f_contiguous
    np.testing.assert_array_equal(state["exp_avg"], opt.state[lin.weight]["exp_avg"])
