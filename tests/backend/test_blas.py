"""backend/blas.py and threads.mkl(): which library our products call, and the products MKL computes."""

import importlib.metadata
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from neural_arch.backend import gemm, threads

rng = np.random.default_rng(0)


def _mkl_installed() -> bool:
    try:
        importlib.metadata.version("mkl")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _run(code: str, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURAL_ARCH_")}
    return subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, capture_output=True, text=True,
                          timeout=600)


def _mkl():
    """MKL loaded whatever the CPU (``threads.mkl()`` is None under "auto" on a CPU that is not Intel's)"""
    from neural_arch.backend import blas

    return blas.load_mkl()


needs_mkl = pytest.mark.skipif(not _mkl_installed(), reason="the mkl wheel is not installed (the `mkl` extra)")


@needs_mkl
def test_mkl_is_the_library_of_our_products_when_installed_on_an_intel_cpu():
    """So that an environment with the `mkl` extra cannot silently run NumPy's OpenBLAS instead on an Intel
    CPU ("auto"), nor MKL's slower AVX2 code on another CPU; NEURAL_ARCH_BLAS_LIB=mkl takes it anywhere."""
    code = ("import ml_dtypes, numpy as np\nfrom neural_arch.backend import threads\n"
            "lib = threads.mkl()\n"
            "if lib is not None:\n"
            "    assert lib.address(np.float32) and lib.address(np.float64)\n"
            "    assert lib.address(ml_dtypes.bfloat16) and lib.address(np.float16)\n"
            "    assert threads._gemm_address(np.dtype(np.float32)) == lib.address(np.float32)\n"  # the polls too
            "print(lib is not None, threads.describe()['products'].split()[0])\n")
    intel = threads.cpu_vendor() in ("GenuineIntel", "")
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == (["True", "MKL"] if intel else ["False", "NumPy's"]), out.stdout
    out = _run(code, NEURAL_ARCH_BLAS_LIB="mkl")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "MKL"], out.stdout


@needs_mkl
def test_importing_loads_no_mkl_and_the_first_product_does():
    code = ("import numpy as np, neural_arch as na\n"
            "def mkl(): return any('libmkl_rt' in line for line in open('/proc/self/maps'))\n"
            "before = mkl()\n"
            "(na.randn(128, 128) @ na.randn(128, 128)).numpy()\n"  # (small products stay NumPy's)
            "print(before, mkl())\n")
    out = _run(code, NEURAL_ARCH_BLAS_LIB="mkl")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]
    out = _run(code, NEURAL_ARCH_BLAS_LIB="openblas")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


def test_asking_for_mkl_where_it_cannot_load_says_what_to_do():
    code = ("import numpy as np\nfrom neural_arch.backend import gemm\n"
            "gemm.matmul(np.ones((128, 128)), np.ones((128, 128)))\n")
    missing = os.path.join(os.sep, "nonexistent", "libmkl_rt.so")
    out = _run(code, NEURAL_ARCH_BLAS_LIB="mkl", NEURAL_ARCH_MKL_PATH=missing)
    assert out.returncode != 0 and "ConfigError" in out.stderr and "neural-arch[mkl]" in out.stderr
    out = _run(code, NEURAL_ARCH_BLAS_LIB="atlas")
    assert out.returncode != 0 and "ConfigError" in out.stderr and "auto, mkl, openblas" in out.stderr


def test_the_gemm_tests_pass_with_numpys_openblas_too():
    """test_gemm.py runs here under MKL (when installed); this runs it again on NumPy's own BLAS."""
    here = os.path.dirname(__file__)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURAL_ARCH_")}
    env["NEURAL_ARCH_BLAS_LIB"] = "openblas"
    out = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                          os.path.join(here, "test_gemm.py")], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:]


LAYOUTS = {  # name -> (a, b, out or None): what cblas.product reads in place
    "row-major": (rng.standard_normal((33, 20)), rng.standard_normal((20, 17)), None),
    "transposed operands": (rng.standard_normal((20, 33)).T, rng.standard_normal((17, 20)).T, None),
    "column-major out (a Linear's dL/dW)": (rng.standard_normal((33, 20)), rng.standard_normal((20, 17)),
                                            np.empty((17, 33)).T),
    "row slices (a leading dimension)": (rng.standard_normal((33, 40))[:, 5:25], rng.standard_normal((20, 17)), None),
    "a batch": (rng.standard_normal((3, 9, 6)), rng.standard_normal((3, 6, 5)), None),
    "attention's heads (B, H, T, D) from (B, T, H, D)": (rng.standard_normal((2, 7, 3, 4)).transpose(0, 2, 1, 3),
                                                         rng.standard_normal((2, 7, 3, 4)).transpose(0, 2, 3, 1), None),
}


@needs_mkl
@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mkl_reads_these_layouts_in_place_and_multiplies_right(name, dtype):
    from neural_arch.backend import cblas

    a, b, out = LAYOUTS[name]
    a, b = a.astype(dtype, order="K"), b.astype(dtype, order="K")
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    target = np.empty(ref.shape, dtype) if out is None else out.astype(dtype, order="K")
    a.flags.writeable = False  # a sum's gradient arrives read-only
    assert cblas.product(a, b, target, _mkl().address(dtype))
    np.testing.assert_allclose(target, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@needs_mkl
def test_what_blas_cannot_read_in_place_falls_back_to_numpy():
    from neural_arch.backend import cblas

    b = rng.standard_normal((6, 5))
    broadcast = np.broadcast_to(rng.standard_normal((1, 6)), (4, 6))  # a zero stride
    assert not cblas.product(broadcast, b, np.empty((4, 5)), _mkl().address(np.float64))
    np.testing.assert_allclose(gemm.matmul(broadcast, b), np.matmul(broadcast, b), rtol=1e-12)
    every_other = rng.standard_normal((4, 12))[:, ::2]  # neither rows nor columns contiguous
    assert not cblas.product(every_other, b, np.empty((4, 5)), _mkl().address(np.float64))
    np.testing.assert_allclose(gemm.matmul(every_other, b), np.matmul(every_other, b), rtol=1e-12)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("shape", [((6, 5, 24), (24, 7)), ((2, 3, 8, 16), (2, 3, 16, 9)), ((40, 300), (300, 50))])
def test_half_products_accumulate_in_float32_and_round_once(dtype, shape, monkeypatch):
    """Half operands (MKL's half GEMM when installed, else widened to float32): the float32 product of
    the same values, rounded once to the half dtype: at most one step of it apart (summation order)."""
    monkeypatch.setattr(threads.policy, "gemm_split_flops", 0)  # the split path too
    monkeypatch.setattr(gemm, "_MKL_MIN_SIZE", 0)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shape)
    got = gemm.matmul(a, b)
    ref = np.matmul(a.astype(np.float32), b.astype(np.float32))
    assert got.dtype == dtype
    step = np.abs(ref) * (2.0 ** -7 if dtype == ml_dtypes.bfloat16 else 2.0 ** -10)  # one step at |ref|
    assert np.all(np.abs(got.astype(np.float32) - ref) <= step + 1e-4)


@needs_mkl
def test_an_lstm_time_loop_takes_mkls_packed_gemm_on_any_cpu_unless_told_openblas():
    """The per-step products of an LSTM's loop run on MKL's pack-once GEMM wherever MKL is installed (on a
    CPU that is not Intel's too, where our other products stay on OpenBLAS), never with "openblas"."""
    code = ("import numpy as np\nfrom neural_arch.backend import threads\n"
            "from neural_arch.backend.kernels import recurrent, recurrent_sequence\n"
            "lib = threads.loop_mkl()\n"
            "print(lib is not None and recurrent.sequence_gemm(np.float32) == lib.address(np.float32),"
            " recurrent_sequence._mkl_packing() is not None)\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"], out.stdout
    out = _run(code, NEURAL_ARCH_BLAS_LIB="openblas")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"], out.stdout
