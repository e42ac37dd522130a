"""backend.gemm.matmul: products split over our threads equal NumPy's, in every layout it cuts (with MKL's GEMMs
when installed: ``test_blas.py`` runs this file again with NumPy's OpenBLAS)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from neural_arch.backend import gemm, threads

rng = np.random.default_rng(0)


def _arr(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


CASES = {  # name -> (a, b): one per way _blocks cuts a product
    "2-D, rows of a (M >= N)": (_arr(37, 20), _arr(20, 11)),
    "2-D, columns of b (M < N)": (_arr(5, 20), _arr(20, 41)),
    "2-D, transposed views": (_arr(20, 37).T, _arr(11, 20).T),
    "batched, same batch": (_arr(5, 7, 9), _arr(5, 9, 6)),
    "batched @ 2-D (a Linear)": (_arr(4, 7, 9), _arr(9, 6)),
    "batch of 1 @ batch of 1 (conv's G = 1)": (_arr(1, 6, 9), _arr(1, 9, 30)),
    "4-D attention scores": (_arr(3, 2, 8, 4), np.swapaxes(_arr(3, 2, 8, 4), -1, -2)),
    "batch of 1, heads cut (generation)": (_arr(1, 4, 6, 5), np.swapaxes(_arr(1, 4, 7, 5), -1, -2)),
    "float64": (_arr(9, 8, dtype=np.float64), _arr(8, 7, dtype=np.float64)),
    "vector x matrix, N >= K: columns": (_arr(1, 5), _arr(5, 23)),
    "vector x matrix, K > N: partial products over K": (_arr(1, 1, 31), _arr(7, 31).T),
}


@pytest.fixture
def split_everything(monkeypatch):
    """Three threads (so cuts are uneven even on 2 cores), and every product counts as large."""
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    monkeypatch.setattr(threads.policy, "gemm_split_flops", 0)
    monkeypatch.setattr(threads.policy, "gemv_split_bytes", 0)
    monkeypatch.setattr(threads, "_blas_ours", True)
    monkeypatch.setattr(gemm, "_MKL_MIN_SIZE", 0)  # small blocks go to MKL (when in use) too


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_product_equals_numpy(name, split_everything):
    a, b = CASES[name]
    assert gemm._blocks(a, b) is not None, "this case should be split"
    out = gemm.matmul(a, b)
    ref = np.matmul(a, b)
    assert out.shape == ref.shape and out.dtype == ref.dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, ref, rtol=1e-6 if a.dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_product_into_a_given_array(name, split_everything):
    """``out=``: the blocks write into it, whatever its layout (nn.Linear's dL/dW goes into the
    transpose of a column-major array)."""
    a, b = CASES[name]
    ref = np.matmul(a, b)
    for out in (np.empty_like(ref), np.empty(ref.shape[::-1], ref.dtype).T):
        if out.ndim > 2 and not out.flags.c_contiguous:
            continue
        got = gemm.matmul(a, b, out=out)
        assert got is out
        np.testing.assert_allclose(out, ref, rtol=1e-6 if a.dtype == np.float32 else 1e-12, atol=1e-6)


def test_small_products_take_numpys_path_with_out():
    a, b = _arr(3, 4), _arr(4, 5)
    out = np.empty((5, 3), np.float32).T
    assert gemm.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-6)


@pytest.mark.parametrize("a, b", [
    (np.arange(12).reshape(3, 4), np.arange(8).reshape(4, 2)),  # integers
    (_arr(4), _arr(4, 3)),  # a vector
    (_arr(2, 1, 5, 4), _arr(3, 4, 6)),  # broadcast batches
    (_arr(5, 4).astype(np.float16), _arr(4, 3).astype(np.float16)),
])
def test_products_it_does_not_split_are_numpys(a, b, split_everything):
    assert gemm._blocks(a, b) is None
    if a.dtype == np.float16:  # a half product: float32 accumulation (MKL's half GEMM, or widened operands)
        np.testing.assert_allclose(gemm.matmul(a, b), np.matmul(a, b), rtol=2e-3, atol=2e-3)
    else:
        np.testing.assert_array_equal(gemm.matmul(a, b), np.matmul(a, b))


def test_small_products_and_native_blas_are_not_split(monkeypatch):
    a, b = _arr(64, 64), _arr(64, 64)
    monkeypatch.setattr(threads, "_blas_ours", True)
    assert gemm._blocks(a, b) is None  # 0.5 MFLOP, far below the threshold
    assert gemm._blocks(a[:1], b) is None  # a 16 KB matrix times a vector
    monkeypatch.setattr(threads.policy, "gemm_split_flops", 0)
    monkeypatch.setattr(threads, "_blas_ours", False)
    assert gemm._blocks(a, b) is None  # BLAS has its own threads: it parallelises itself


def _blas_threads(env_extra):
    code = ("import neural_arch\nfrom neural_arch.backend import threads\n"
            "print([i['num_threads'] for i in threads.blas_info()], threads.blas_is_ours())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEURAL_ARCH_", "OPENBLAS_", "OMP_"))}
    out = subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_import_leaves_blas_its_threads_and_native_opts_out_of_splitting():
    cores = os.cpu_count()
    assert _blas_threads({}) == f"[{cores}] True"  # OpenBLAS's default: one per core, as without us
    assert _blas_threads({"NEURAL_ARCH_BLAS_THREADS": "native"}) == f"[{cores}] False"
    assert _blas_threads({"NEURAL_ARCH_NUM_THREADS": "1"}) == f"[{cores}] True"  # caps ours, not BLAS


needs_openblas = pytest.mark.skipif(not threads.blas_is_ours(), reason="NumPy's BLAS is not an OpenBLAS we can set "
                                    "(or NEURAL_ARCH_BLAS_THREADS=native)")


@needs_openblas
def test_blas_runs_one_thread_inside_our_calls_and_gets_the_users_count_back():
    blas = threads._numpy_openblas()
    user = blas.get()
    try:
        blas.set(3)  # the user's own setting
        seen = []
        threads.blas_enter()
        threads.blas_enter()  # nested (a split product inside conv's split images)
        seen.append(blas.get())
        threads.blas_exit()
        seen.append(blas.get())
        threads.blas_exit()
        assert seen == [1, 1] and blas.get() == 3

        def record(out):
            out[0] = blas.get()  # on the caller and on a helper thread, while the split call runs

        outs = [np.zeros(1) for _ in range(2)]
        threads.run_split(record, [(o,) for o in outs])
        assert [o[0] for o in outs] == [1, 1] and blas.get() == 3
    finally:
        blas.set(user)


@needs_openblas
def test_a_scoped_product_puts_the_count_back_when_it_raises():
    blas = threads._numpy_openblas()
    user = blas.get()
    try:
        blas.set(3)
        a = _arr(64, 80)
        assert gemm._blas_may_thread(a, _arr(80, 90))  # OpenBLAS would thread it: it is scoped
        with pytest.raises(ValueError):
            gemm.matmul(a, _arr(81, 90))  # wrong inner size: NumPy raises inside the scope
        assert blas.get() == 3 and threads._scope_depth == 0
        np.testing.assert_allclose(gemm.matmul(a, _arr(80, 90)).shape, (64, 90))
        assert blas.get() == 3
    finally:
        blas.set(user)


def test_products_openblas_runs_on_one_thread_anyway_are_not_scoped():
    assert not gemm._blas_may_thread(_arr(64, 64), _arr(64, 64))  # m n k = 2^18: OpenBLAS's own limit
    assert gemm._blas_may_thread(_arr(65, 64), _arr(64, 64))
    assert not gemm._blas_may_thread(_arr(1, 90), _arr(90, 100))  # a vector: 9,000 < 2304 * 4
    assert gemm._blas_may_thread(_arr(1, 96), _arr(96, 100))


def test_read_only_operands_are_multiplied_right_whichever_way_a_block_goes(split_everything):
    """A sum's gradient reaches matmul's backward as a read-only broadcast view: a block handed to a
    polling helper (numba signatures for writeable arrays) must fall back to the lock hand-off, not
    raise. Several rounds right after a product, so that the helpers are polling."""
    a, b = _arr(64, 48), _arr(48, 40)
    ones = np.broadcast_to(np.float32(1.0), (64, 48))
    for _ in range(5):
        gemm.matmul(a, b)  # the helpers poll after this one
        np.testing.assert_allclose(gemm.matmul(ones, b), np.matmul(ones, b), rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(gemm.matmul(a, np.broadcast_to(b[:1], b.shape)),
                                   np.matmul(a, np.broadcast_to(b[:1], b.shape)), rtol=1e-6, atol=1e-5)
