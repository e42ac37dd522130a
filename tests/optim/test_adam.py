"""Adam/AdamW's one-pass step (backend.kernels.optim.adam_step) against torch's trajectories, on both
implementations, and the kernel against the twin."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch import optim
from neural_arch.backend import kernels

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
def test_adam_matches_torch(name, kw, impl):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((40, 64)).astype(np.float32)
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(15)]
    before = kernels.calls["adam_step"]
    ours = _trajectory(lambda ps: getattr(optim, name)(ps, **kw), lambda: na.nn.Parameter(na.tensor(p0.copy())),
                       [lambda p, g=g: na.tensor(g) for g in gs])
    assert kernels.calls["adam_step"] - before == (len(gs) if impl == "kernel" else 0)  # the kernel really ran
    ref = _trajectory(lambda ps: getattr(torch.optim, name)(ps, **kw),
                      lambda: torch.nn.Parameter(torch.tensor(p0.copy())), [lambda p, g=g: torch.tensor(g) for g in gs])
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", CONFIGS)
def test_adam_kernel_is_the_twin_bit_for_bit(name, kw, jit):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((40, 64)).astype(np.float32)
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(15)]

    def run():
        return _trajectory(lambda ps: getattr(optim, name)(ps, **kw), lambda: na.nn.Parameter(na.tensor(p0.copy())),
                           [lambda p, g=g: na.tensor(g) for g in gs])

    kernel = run()
    with kernels.enabled(False):
        twin = run()
    np.testing.assert_array_equal(kernel, twin)


@pytest.mark.parametrize("grad_order", ["F", "C"])
def test_adam_kernel_on_column_major_parameters(grad_order, jit):
    """nn.Linear's weights are column-major: the kernel walks them (and their state) in memory order,
    and a gradient of the other layout is converted, not misread."""
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((40, 64)).astype(np.float32)
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(5)]
    before = kernels.calls["adam_step"]
    column = _trajectory(lambda ps: optim.AdamW(ps, lr=1e-2, amsgrad=True),
                         lambda: na.nn.Parameter(np.asfortranarray(p0)),
                         [lambda p, g=g: na.Tensor(np.asarray(g, order=grad_order)) for g in gs])
    assert kernels.calls["adam_step"] - before == len(gs), "the kernel should have run every step"
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
