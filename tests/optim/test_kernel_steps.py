"""The SGD, Lion, RMSprop, Adagrad, Adamax, Adadelta, NAdam and RAdam kernels (backend.kernels.optim) against
their NumPy twins, bit for bit, on row- and column-major parameters, one thread and split over the threads.
(test_optimizers.py checks the float32 trajectories against torch and the Lion reference;
test_fused_adam.py does Adam's.)"""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import optim
from neural_arch.backend import kernels, threads

pytestmark = pytest.mark.usefixtures("jit")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.01)),
    ("Lion", dict(lr=1e-2)),
    ("Lion", dict(lr=3e-3, betas=(0.95, 0.98), weight_decay=0.1)),
    ("Lion", dict(lr=3e-3, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-2, centered=True)),
    ("RMSprop", dict(lr=1e-2, alpha=0.3, centered=True, momentum=0.5, maximize=True)),  # lerp_ from the far end
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.3, 0.99), weight_decay=0.1, maximize=True)),  # lerp_ from the near end
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1)),  # rectified from step 6 on
    ("RAdam", dict(lr=0.01, betas=(0.3, 0.8), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]
KERNEL = {"SGD": "sgd_step", "Lion": "lion_step", "RMSprop": "rmsprop_step", "Adagrad": "adagrad_step",
          "Adamax": "adamax_step", "Adadelta": "adadelta_step", "NAdam": "nadam_step", "RAdam": "radam_step"}


def _trajectory(name, kw, p0, grads, order="C", grad_order="C"):
    """Parameters after stepping on ``grads``; each gradient depends on the parameter (curvature),
    so a difference in any step would carry on."""
    p = na.nn.Parameter(np.array(p0, order=order))  # (na.tensor would make a row-major copy)
    opt = getattr(optim, name)([p], **kw)
    for g in grads:
        p.grad = na.Tensor(np.asarray(g + 0.3 * p.data, order=grad_order))
        opt.step()
    return p.data, opt


def _problem(shape=(40, 64), steps=12):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]
    grads[2][0, :5] = 0.0  # exact zeros: Lion's sign(0) = 0
    return p0, grads


def _numpy_path(name, kw, p0, grads):
    with kernels.enabled(False):
        return _trajectory(name, kw, p0, grads)[0]


@pytest.mark.parametrize("name,kw", CASES, ids=str)
def test_kernel_step_is_the_twin_bit_for_bit(name, kw):
    before = kernels.calls[KERNEL[name]]
    p0, grads = _problem()
    fused, opt = _trajectory(name, kw, p0, grads)
    assert kernels.calls[KERNEL[name]] - before == len(grads), "the kernel should have run every step"
    np.testing.assert_array_equal(fused, _numpy_path(name, kw, p0, grads))
    for value in opt.state_dict()["state"].get(0, {}).values():  # the state the NumPy path would have kept
        assert not isinstance(value, np.ndarray) or value.dtype == np.float32


@pytest.mark.parametrize("name,kw", [CASES[2], CASES[3], CASES[6], CASES[11], CASES[13], CASES[15], CASES[17],
                                     CASES[19], CASES[20]], ids=str)
@pytest.mark.parametrize("grad_order", ["F", "C"])
def test_kernel_step_on_column_major_parameters(name, kw, grad_order):
    """nn.Linear's weights are column-major: the kernels walk them and their state in memory order,
    and a gradient of the other layout is converted, not misread."""
    p0, grads = _problem()
    column, opt = _trajectory(name, kw, p0, grads, order="F", grad_order=grad_order)
    row, _ = _trajectory(name, kw, p0, grads)
    np.testing.assert_array_equal(column, row)
    assert column.flags.f_contiguous
    state = next(iter(opt.state.values()))
    assert all(v.flags.f_contiguous for v in state.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("name,kw", [CASES[0], CASES[3], CASES[6], CASES[8], CASES[11], CASES[13], CASES[14],
                                     CASES[16], CASES[18], CASES[21]], ids=str)
def test_kernel_step_split_over_threads(name, kw, monkeypatch):
    """A call of at least policy.kernel_min_elements is cut into row ranges, one per thread."""
    p0, grads = _problem((37, 29))
    want = _numpy_path(name, kw, p0, grads)
    monkeypatch.setattr(threads.policy, "kernel_min_elements", 64)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    np.testing.assert_array_equal(_trajectory(name, kw, p0, grads)[0], want)
