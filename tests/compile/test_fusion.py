"""na.compile's fused replay: elementwise chains as generated kernels into static buffers, Adam/AdamW as
one kernel call per parameter group.

Tolerance: GELU's eager kernel is compiled with fastmath, so a fused loop may round it differently;
every other fused op (add, sub, mul, relu, counter dropout, the Adam update) does the same float32
operations in the same order as eager. Losses, parameters and buffers after five AdamW steps must agree
with eager within 1e-6 relative (plus 1e-6 absolute, for values that cross zero); on the machines we
ran, they are bit for bit equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.compile.test_compile import MODELS, REFUSED, _mlp, _run, _xy

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.backend import kernels

# models whose step has elementwise chains (bias + gelu, dropout + residual add + layer_norm, add + relu, mul + add)
CHAINED = {"gpt2", "bert", "modern", "mamba", "resnet", "idefics", "mlp", "vit", "clip"}
# models with a parameter that gets no gradient in their step: the optimizer runs its own step
PARTLY_TRAINED = {"idefics"}


def _close(eager, fused):
    assert len(eager) == len(fused)
    for a, b in zip(eager, fused):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(REFUSED)))
def test_a_fused_training_step_equals_eager(name, jit):
    eager_losses, eager_state, _ = _run(name, compiled=False)
    losses, state, fn = _run(name, compiled=True, fuse=True)
    assert fn.refusals == [] and fn.programs == 1
    report = fn.fusion_report
    replays = 3  # steps 3-5 (1 and 2 are the eager recordings)
    if name in CHAINED:
        assert report["groups"] > 0 and report["group_runs"] == report["groups"] * replays, report
    assert report["optimizer_runs"] == (0 if name in PARTLY_TRAINED else replays), report
    _close(eager_losses, losses)
    _close(eager_state, state)


def test_the_numpy_fallback_runs_the_groups_and_equals_eager_bit_for_bit():
    with kernels.enabled(False):
        eager_losses, eager_state, _ = _run("gpt2", compiled=False)
        losses, state, fn = _run("gpt2", compiled=True, fuse=True)
    assert fn.fusion_report["group_runs"] > 0
    assert fn.fusion_report["optimizer_runs"] == 0  # (kernels off: the optimizer's own NumPy step)
    for a, b in zip(eager_losses + eager_state, losses + state):
        assert np.array_equal(a, b)


def test_fuse_false_runs_no_generated_kernel():
    _, _, fn = _run("gpt2", compiled=True, fuse=False)
    assert fn.programs == 1 and fn.fusion_report == {"groups": 0, "group_runs": 0, "chains": [],
                                                     "optimizer_runs": 0}


def test_a_returned_fused_value_and_a_view_of_one_are_new_arrays_each_call():
    """Static buffers are reused by the next replay: what the call returns must not be one."""
    rng = np.random.default_rng(0)
    b = na.tensor(rng.standard_normal(16).astype(np.float32))

    def f(x):
        h = (x + b).relu()  # a fused chain whose last value is returned
        return h, ((x - b) * b).reshape(-1)  # and one read only through a view (reshape)

    fn = na.compile(f)
    kept = []
    with na.no_grad():
        for _ in range(5):
            x = na.tensor(rng.standard_normal((4, 16)).astype(np.float32))
            h, flat = fn(x)
            kept.append((x.numpy().copy(), h, flat))
    assert fn.fused_groups == 2 and fn.fusion_report["group_runs"] == 6
    for x, h, flat in kept:
        assert np.array_equal(h.numpy(), np.maximum(x + b.numpy(), 0))
        assert np.array_equal(flat.numpy(), ((x - b.numpy()) * b.numpy()).reshape(-1))


def test_the_fused_optimizer_follows_groups_and_a_scheduler_bit_for_bit(jit):
    runs = []
    for compiled in (False, True):
        na.manual_seed(0)
        model = _mlp()
        decay = [p for p in model.parameters() if p.ndim == 2]
        other = [p for p in model.parameters() if p.ndim != 2]
        opt = optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                          lr=1e-2)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

        def step(x, y, model=model, opt=opt, sched=sched):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            return loss

        fn = na.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        na.manual_seed(3)
        for _ in range(6):
            fn(*_xy(rng))
        runs.append([p.data.copy() for p in model.parameters()] +
                    [v.copy() for s in opt.state.values() for v in (s["exp_avg"], s["exp_avg_sq"])])
        if compiled:
            assert fn.fusion_report["optimizer_runs"] == 4
            assert all(s["step"] == 6 for s in opt.state.values())
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_a_group_large_enough_to_split_over_the_threads_equals_eager_bit_for_bit():
    """Row ranges on several threads: dropout's counter and the layer norm rows must follow each range."""
    import neural_arch.nn.functional as F

    rng = np.random.default_rng(0)
    x, r, w, b, bias = (na.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
                        for s in ((128, 2048), (128, 2048), (2048,), (2048,), (2048,)))

    def f(x, r):
        h = F.gelu(x + bias, approximate="tanh")
        y = F.layer_norm(F.dropout(x + bias, 0.2) + r, (2048,), w, b)
        z = (y * h).sum()
        z.backward()
        return z

    def run(fn):
        na.manual_seed(1)
        out = []
        for _ in range(4):
            for t in (x, r, w, b, bias):
                t.grad = None
            out += [fn(x, r).detach().numpy().copy()] + [t.grad.numpy().copy() for t in (x, r, w, b, bias)]
        return out

    eager = run(f)
    compiled = na.compile(f)
    fused = run(compiled)
    assert compiled.fusion_report["chains"] == ["Group(add -> gelu_tanh, (128, 2048))",
                                                "Group(add -> dropout -> add -> layer_norm, (128, 2048))"]
    for a, c in zip(eager, fused):
        np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-6)
