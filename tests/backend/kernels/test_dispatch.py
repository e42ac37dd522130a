"""backend.kernels' one dispatch: which implementation runs, decided in one place."""

import os
import subprocess
import sys

import numpy as np
import pytest

from neural_arch.backend import kernels
from neural_arch.backend.kernels import activation, elementwise, optim


def test_the_kernels_are_in_use_in_a_normal_run():
    """numba is a core dependency: unless NEURAL_ARCH_JIT=0 is set on purpose, float32 work runs the kernels."""
    if os.environ.get("NEURAL_ARCH_JIT", "1").strip().lower() in ("0", "false", "no", "off"):
        assert not kernels.active()
        return
    assert kernels.active(), "numba is missing or the kernels are off: install numba (a core dependency)"
    before = kernels.calls["gelu"]
    activation.gelu(np.ones(8, np.float32), False, False)
    assert kernels.calls["gelu"] == before + 1


def test_float64_empty_and_small_arrays_take_the_twin(jit):
    before = dict(kernels.calls)
    activation.gelu(np.ones(8), False, False)  # float64
    activation.gelu(np.ones(0, np.float32), False, False)  # empty
    activation.gelu(np.float32(1.0) * np.ones((), np.float32), False, False)  # 0-d
    elementwise.multiply(np.ones(8, np.float32), np.ones(8, np.float32))  # under min_elements
    assert dict(kernels.calls) == before


def test_a_float64_argument_beside_a_float32_one_takes_the_twin(jit):
    before = kernels.calls["multiply_large"]
    out = elementwise.multiply(np.ones(5000, np.float32), np.ones(5000))
    assert out.dtype == np.float64 and kernels.calls["multiply_large"] == before


def test_switching_off_runs_the_twin_and_leaves_the_environment_alone(jit):
    env = dict(os.environ)
    kernels.set_enabled(False)
    before = kernels.calls["gelu"]
    y, d = activation.gelu(np.linspace(-3, 3, 7, dtype=np.float32), True, True)
    assert kernels.calls["gelu"] == before and y.dtype == d.dtype == np.float32
    kernels.set_enabled(True)
    assert dict(os.environ) == env


def test_each_family_function_has_both_implementations():
    from neural_arch.backend.kernels import conv, depthwise, dropout, embedding, norm, pool, reduce, scan, softmax_loss

    for family in (activation, conv, depthwise, dropout, elementwise, embedding, norm, optim, pool, reduce, scan,
                   softmax_loss):
        fns = [v for v in vars(family).values() if callable(v) and hasattr(v, "twin")]
        assert fns, family.__name__
        for fn in fns:
            assert callable(fn.kernel) and callable(fn.twin) and fn.__doc__, fn.__name__


def test_importing_does_not_import_numba():
    code = "import sys, neural_arch.nn.functional\nprint('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_warm_compiles_every_family(jit):
    assert kernels.warm() >= 0.0


def test_a_broken_numba_fails_loudly_unless_the_kernels_are_off_on_purpose(tmp_path):
    """A numba that is installed but cannot be imported is an error at the first kernel call (it is a core
    dependency), with what to do; NEURAL_ARCH_JIT=0 runs the twins."""
    fake = tmp_path / "numba"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('llvmlite is missing')\n")
    code = ("import numpy as np\nfrom neural_arch.backend.kernels import activation\n"
            "print(activation.gelu(np.ones(4, np.float32), False, False)[0].sum())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path)] + sys.path)}
    env.pop("NEURAL_ARCH_JIT", None)
    broken = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode != 0 and "NEURAL_ARCH_JIT=0" in broken.stderr, broken.stderr[-2000:]
    off = subprocess.run([sys.executable, "-c", code], env={**env, "NEURAL_ARCH_JIT": "0"}, capture_output=True,
                         text=True, timeout=120)
    assert off.returncode == 0 and float(off.stdout) > 3.3, off.stderr[-2000:]
