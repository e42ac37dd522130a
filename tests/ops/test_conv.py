"""Convolution ops: conv1d, conv2d, conv_transpose2d, unfold, fold vs torch (forward, backward,
float64/float32), gradcheck, and the errors a user can cause."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import ConfigError, DTypeError, ShapeError
from parity import check, gradcheck, randn

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# float32 GEMMs sum up to C*kh*kw products in a different order than torch's kernels
F32 = dict(dtypes=(np.float32,), rtol=1e-4, atol=1e-5)


def both(fn, inputs, torch_fn=None, **kw):
    """float64 at the tight default tolerance, float32 at GEMM-accumulation tolerance."""
    check(fn, inputs, torch_fn=torch_fn, dtypes=(np.float64,), **kw)
    check(fn, inputs, torch_fn=torch_fn, **{**F32, **kw})


def conv2d_call(mod, bias, kw):
    if bias:
        return lambda x, w, b: mod.conv2d(x, w, b, **kw)
    return lambda x, w: mod.conv2d(x, w, **kw)


CONV2D = [  # (input shape, weight shape, kwargs)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((1, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 8, 9), (6, 2, 3, 2), dict(groups=2, stride=(2, 1), padding=(1, 0))),
    ((2, 4, 6, 6), (4, 1, 3, 3), dict(groups=4, padding=1)),  # depthwise
    ((2, 4, 6, 6), (8, 1, 3, 3), dict(groups=4, padding=1)),  # depthwise, channel multiplier 2
    ((2, 3, 9, 8), (5, 3, 3, 2), dict(padding="same", dilation=2)),
    ((2, 3, 9, 8), (5, 3, 4, 2), dict(padding="same")),  # even kernel: asymmetric "same" padding
    ((2, 3, 9, 8), (5, 3, 2, 3), dict(padding="valid", dilation=(2, 3))),
    ((3, 5, 5, 5), (2, 5, 1, 1), {}),  # 1x1 conv: the input is its own column matrix
    ((2, 2, 5, 7), (3, 2, 5, 7), {}),  # kernel as large as the input: a 1x1 output
    ((2, 3, 10, 11), (4, 3, 3, 3), dict(stride=3, padding=2, dilation=2)),
    ((2, 3, 13, 12), (4, 3, 7, 7), dict(stride=2, padding=3)),  # ResNet's stem: im2col from phase planes
    ((2, 2, 9, 8), (3, 2, 5, 5), dict(stride=2, padding=(1, 2))),  # odd padded sizes
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,kw", CONV2D)
def test_conv2d_parity(xs, ws, kw, bias):
    inputs = [randn(*xs, seed=1), randn(*ws, seed=2)] + ([randn(ws[0], seed=3)] if bias else [])
    both(conv2d_call(F, bias, kw), inputs, torch_fn=conv2d_call(TF, bias, kw))


@pytest.mark.parametrize("xs,ws,kw", CONV2D)
def test_conv2d_kernel_path_one_image_per_chunk(xs, ws, kw, monkeypatch):
    """float32 takes the kernel path, which works in chunks of images; 1 byte per chunk makes every
    image its own chunk, so each loop (forward, dL/dx, dL/dW summed over chunks) runs several times."""
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "conv_chunk_bytes", 1)
    inputs = [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)]
    check(conv2d_call(F, True, kw), inputs, torch_fn=conv2d_call(TF, True, kw), **F32)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("ws,kw", [((4, 3, 3, 3), dict(padding=1)), ((6, 3, 3, 3), dict(padding=1, dilation=2)),
                                   ((6, 2, 3, 3), dict(groups=3, padding=(2, 1), dilation=(2, 1)))])
def test_conv2d_kernel_path_over_thread_ranges(n, ws, kw, n_threads, monkeypatch):
    """float32 conv2d gives each thread its own range of images (a batch smaller than the thread count
    is one range whose products are split instead); these geometries take the flat im2col (unit
    strides, output as wide as the input), and 5 images over 2 or 3 threads make unequal ranges."""
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "num_threads", n_threads)
    inputs = [randn(n, ws[1] * kw.get("groups", 1), 7, 6, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)]
    check(conv2d_call(F, True, kw), inputs, torch_fn=conv2d_call(TF, True, kw), **F32)


@pytest.mark.parametrize("plan", ["im2col/cache/direct", "im2col/cache/transposed", "im2col/whole/direct",
                                  "im2col/whole/transposed", "winograd/cache/direct", "winograd/whole/transposed",
                                  "dense/whole/direct"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv2d_every_algorithm_candidate(plan, n_threads, monkeypatch):
    """Each plan the per-shape table may choose (kernels/conv_algorithms.py), forced on every shape of
    CONV2D, over one and two threads, with chunks of two images: the same values as torch. (Winograd
    takes the 3x3 stride-1 ones, padding 1 and "same"; dense the images with fewer pixels than taps; the
    others fall back to im2col.)"""
    from neural_arch.backend import threads
    from neural_arch.backend.kernels import conv_algorithms
    from neural_arch.backend.kernels.conv import _Geometry

    monkeypatch.setattr(conv_algorithms, "force", conv_algorithms.CANDIDATES[plan])
    monkeypatch.setattr(threads.policy, "num_threads", n_threads)
    for xs, ws, kw in CONV2D + WINOGRAD_SHAPES + DENSE_SHAPES:
        xs = (5,) + xs[1:]
        monkeypatch.setattr(threads.policy, "conv_chunk_bytes", 8 * int(np.prod(ws[1:])) * xs[2] * xs[3])
        inputs = [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)]
        check(conv2d_call(F, True, kw), inputs, torch_fn=conv2d_call(TF, True, kw), **F32)
    for xs, ws, kw in WINOGRAD_SHAPES if not plan.startswith("dense") else ():  # the plan forced is the plan run
        ph, pw = (kw["padding"],) * 2 if isinstance(kw["padding"], int) else kw["padding"]
        pads = (ph, ph, pw, pw)
        assert _Geometry((5,) + xs[1:], ws, (1, 1), pads, (1, 1), 1).plan.method == plan.split("/")[0]
    for xs, ws, kw in DENSE_SHAPES if plan.startswith("dense") else ():
        stride, pad, dil = (kw.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
        pads, stride, dil = (pad,) * 4 if isinstance(pad, int) else (pad[0], pad[0], pad[1], pad[1]), (
            stride,) * 2 if isinstance(stride, int) else stride, (dil,) * 2 if isinstance(dil, int) else dil
        assert _Geometry((5,) + xs[1:], ws, stride, pads, dil, 1).plan.method == "dense"
    # conv_transpose2d runs conv2d's input gradient as its forward
    kw = dict(padding=1)
    inputs = [randn(5, 4, 6, 7, seed=1), randn(4, 3, 3, 3, seed=2), randn(3, seed=3)]
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), inputs,
          torch_fn=lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw), **F32)


def _use_mkl(monkeypatch):
    """Our products on MKL for this test, as NEURAL_ARCH_BLAS_LIB=mkl would make them."""
    from neural_arch.backend import blas, gemm, threads

    lib = blas.load_mkl()
    assert lib is not None, f"MKL (the dev extra installs it) did not load: {blas.load_error}"
    monkeypatch.setattr(threads, "_mkl", lib)
    monkeypatch.setattr(gemm, "_mkl", None)  # gemm decides again, from threads.mkl()
    monkeypatch.setattr(gemm, "_mkl_gemm", {})
    assert gemm.mkl_in_use()


@pytest.mark.parametrize("blas", ["mkl", "openblas"])
@pytest.mark.parametrize("plan", ["im2col/cache/transposed", "im2col/whole/direct", "winograd/cache/direct",
                                  "dense/whole/direct"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv2d_products_on_either_blas(blas, plan, n_threads, monkeypatch):
    """The conv pipelines' products on MKL and on NumPy's OpenBLAS (``conv_algorithms.products``, which picks
    OpenBLAS on CPUs that are not Intel's), forced, over one and two threads: the same values as torch, and
    OpenBLAS's product is the one that ran."""
    from neural_arch.backend import threads
    from neural_arch.backend.kernels import _dispatch, conv, conv_algorithms

    if not _dispatch.active():
        pytest.skip("the kernels are off (NEURAL_ARCH_JIT=0)")
    if blas == "mkl":  # in use whatever the CPU ("auto" leaves it out on CPUs that are not Intel's)
        _use_mkl(monkeypatch)
    if blas == "openblas" and not conv_algorithms._openblas_callable():
        pytest.skip("NumPy's BLAS is not an OpenBLAS we can call by address and hold to one thread")
    calls = []

    def counted(fn):
        def run(*args):
            calls.append(fn.__name__)
            return fn(*args)
        return run

    monkeypatch.setattr(conv, "openblas_here", counted(conv.openblas_here))
    monkeypatch.setattr(conv, "_openblas_into", counted(conv._openblas_into))
    monkeypatch.setattr(conv_algorithms, "force_products", blas)
    monkeypatch.setattr(conv_algorithms, "force", conv_algorithms.CANDIDATES[plan])
    monkeypatch.setattr(threads.policy, "num_threads", n_threads)
    shapes = CONV2D[:3] + CONV2D[11:] + WINOGRAD_SHAPES + [((16, 5, 2, 2), (6, 5, 3, 3), dict(padding=1))]
    for xs, ws, kw in shapes:
        xs = (max(4, xs[0]),) + xs[1:]
        inputs = [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)]
        check(conv2d_call(F, True, kw), inputs, torch_fn=conv2d_call(TF, True, kw), **F32)
    assert bool(calls) == (blas == "openblas")


def test_conv2d_products_blas_choice(monkeypatch):
    """OpenBLAS for the conv products on a CPU that is not Intel's (MKL in use or not); on Intel's MKL where
    it is in use, else NumPy's matmul with the plan from before the table."""
    from neural_arch.backend import gemm
    from neural_arch.backend.kernels import conv_algorithms

    monkeypatch.setattr(conv_algorithms, "_openblas_callable", lambda: True)
    for mkl in (True, False):
        monkeypatch.setattr(gemm, "mkl_in_use", lambda mkl=mkl: mkl)
        for vendor, expected in (("GenuineIntel", "mkl" if mkl else "numpy"), ("AuthenticAMD", "openblas"),
                                 ("", "mkl" if mkl else "numpy")):
            monkeypatch.setattr(conv_algorithms, "_products", None)
            monkeypatch.setattr(conv_algorithms.threads, "cpu_vendor", lambda vendor=vendor: vendor)
            assert conv_algorithms.products() == expected
            plan = conv_algorithms.plan_for(64, 64, (3, 3), (1, 1), (16, 16), (16, 16), 32)
            assert plan.method == ("im2col" if expected == "numpy" else "winograd")
    monkeypatch.setattr(conv_algorithms, "force_products", "mkl")
    assert conv_algorithms.products() == "mkl"


WINOGRAD_SHAPES = [  # 3x3 stride 1: odd and even output sizes, paddings 0 to 2, asymmetric ones
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(padding=1)),
    ((2, 5, 8, 8), (6, 5, 3, 3), dict(padding=1)),
    ((2, 3, 5, 9), (4, 3, 3, 3), dict(padding=(2, 0))),
    ((2, 2, 2, 2), (3, 2, 3, 3), dict(padding=1)),
]


DENSE_SHAPES = [  # fewer input pixels than taps: the dense product applies (strides, dilation, padding)
    ((2, 5, 2, 2), (6, 5, 3, 3), dict(padding=1)),
    ((2, 3, 1, 1), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 2, 3), (4, 3, 3, 3), dict(stride=(2, 1), padding=(2, 0), dilation=(2, 1))),
]


def test_winograd_turned_filter_from_the_forward_transform(monkeypatch):
    """dL/dx's filter transform is derived from the forward's (a permutation of the 16 positions and the
    channel axes swapped) and equals transforming the turned filter; a Winograd step transforms once, and
    its dL/dx and dL/dW are torch's."""
    from neural_arch.backend import threads
    from neural_arch.backend.kernels import _dispatch, conv_algorithms, winograd

    w = randn(5, 3, 3, 3, seed=2).astype(np.float32)
    direct = winograd.transform_filter(np.ascontiguousarray(winograd.input_grad_filter(w)))
    np.testing.assert_allclose(winograd.turned(winograd.transform_filter(w)), direct, rtol=0, atol=1e-6)
    if not _dispatch.active():
        pytest.skip("the kernels are off (NEURAL_ARCH_JIT=0): no Winograd path")
    monkeypatch.setattr(conv_algorithms, "force", conv_algorithms.CANDIDATES["winograd/cache/direct"])
    monkeypatch.setattr(threads.policy, "num_threads", 1)
    calls = []
    transform = winograd.transform_filter
    monkeypatch.setattr(winograd, "transform_filter", lambda f: calls.append(f.shape) or transform(f))
    x = randn(4, 3, 6, 7, seed=1).astype(np.float32)
    ours = [na.tensor(x, requires_grad=True), na.tensor(w, requires_grad=True)]
    ref = [torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)]
    F.conv2d(*ours, padding=1).square().sum().backward()
    TF.conv2d(*ref, padding=1).square().sum().backward()
    assert calls == [w.shape[:2] + (3, 3)]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_conv2d_keeps_the_dense_filter_for_backward():
    """The dense method's forward leaves its expanded filter in the op's context and the backward uses it:
    dL/dx and dL/dW as torch's, and the filter expanded once per step (one ``expand`` call). (2x2 images in
    a batch of 16: the table's own choice where MKL or OpenBLAS-by-address runs the products.)"""
    from neural_arch.backend.kernels import _dispatch, conv_algorithms, conv_dense

    if not _dispatch.active() or conv_algorithms.products() == "numpy":
        pytest.skip("the kernels are off (NEURAL_ARCH_JIT=0) or the conv products are NumPy's: no dense method")
    x, w = randn(16, 8, 2, 2, seed=1).astype(np.float32), randn(8, 8, 3, 3, seed=2).astype(np.float32)
    ours = [na.tensor(x, requires_grad=True), na.tensor(w, requires_grad=True)]
    ref = [torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)]
    before = _dispatch.calls["expand"]
    F.conv2d(*ours, padding=1).sum().backward()
    TF.conv2d(*ref, padding=1).sum().backward()
    assert _dispatch.calls["expand"] - before == 1
    assert conv_dense.applies((2, 2), (3, 3), 1)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_conv2d_algorithm_table_picks_a_candidate():
    from neural_arch.backend.kernels import conv_algorithms

    for c, o, k, s, hw in [(16, 32, (3, 3), (1, 1), (28, 28)), (3, 64, (7, 7), (2, 2), (32, 32)),
                           (512, 512, (3, 3), (1, 1), (2, 2)), (64, 128, (1, 1), (2, 2), (8, 8)),
                           (64, 64, (3, 3), (1, 1), (16, 16))]:
        for batch in (1, 32):
            plan = conv_algorithms.plan_for(c, o, k, s, hw, hw if s == (1, 1) else None, batch)
            assert plan in conv_algorithms.CANDIDATES.values()
            assert plan.method == "im2col" or (k, s) == ((3, 3), (1, 1))  # Winograd computes only 3x3 stride 1
            # (dense only where the image has fewer pixels than the kernel has taps, in a batch of 16 or more)
            table = conv_algorithms.products() != "numpy"
            dense = table and s == (1, 1) and hw[0] * hw[1] < k[0] * k[1] and batch >= 16
            assert (plan.method == "dense") == dense
    # nor where the expanded filter would be more than twice the filter (a 7x7 kernel on a 6x6 image)
    assert conv_algorithms.plan_for(8, 8, (7, 7), (1, 1), (6, 6), (6, 6), 32).method != "dense"


@pytest.mark.parametrize("xs,ws,kw", CONV2D[:7])
def test_conv2d_gradcheck(xs, ws, kw):
    xs = (1,) + xs[1:]  # batch 1 keeps the exact (one pair per element) check cheap
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)])


def test_conv2d_benchmark_shape_float32():
    # the CNN benchmark layer: N=32, C 16 -> 32, 28x28, 3x3, padding 1
    kw = dict(padding=1)
    inputs = [randn(32, 16, 28, 28, seed=1), randn(32, 16, 3, 3, seed=2, scale=0.1), randn(32, seed=3)]
    # dL/dW sums 25,088 products per entry (|dL/dW| up to ~600): float32 rounding is ~1e-3
    # absolute for both frameworks (ours measured ~10x closer to the float64 result than torch's)
    check(conv2d_call(F, True, kw), inputs, torch_fn=conv2d_call(TF, True, kw), dtypes=(np.float32,),
          rtol=1e-4, atol=5e-4)
    gradcheck(conv2d_call(F, True, kw), [randn(4, 16, 8, 8, seed=1), randn(8, 16, 3, 3, seed=2), randn(8, seed=3)],
              fast_mode=True)


def test_conv2d_noncontiguous_and_unbatched():
    kw = dict(padding=1, stride=2)
    check(conv2d_call(F, True, kw), [randn(2, 3, 6, 5, seed=1), randn(4, 3, 3, 3, seed=2), randn(4, seed=3)],
          torch_fn=conv2d_call(TF, True, kw), dtypes=(np.float64,), noncontig=True)
    check(conv2d_call(F, True, kw), [randn(3, 6, 5, seed=1), randn(4, 3, 3, 3, seed=2), randn(4, seed=3)],
          torch_fn=conv2d_call(TF, True, kw), dtypes=(np.float64,))


def test_conv2d_grad_of_one_input_only():
    x, w = randn(2, 3, 5, 5, seed=1), randn(4, 3, 3, 3, seed=2)
    for need_x in (True, False):
        xt, wt = na.tensor(x, requires_grad=need_x), na.tensor(w, requires_grad=not need_x)
        X, W = torch.tensor(x, requires_grad=need_x), torch.tensor(w, requires_grad=not need_x)
        F.conv2d(xt, wt, padding=1).sum().backward()
        TF.conv2d(X, W, padding=1).sum().backward()
        ours, ref = (xt, X) if need_x else (wt, W)
        np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert (wt if need_x else xt).grad is None


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 2), st.sampled_from([(1, 1), (2, 1), (2, 2), (3, 3), (6, 3)]), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.integers(5, 8), st.integers(5, 8))
def test_conv2d_hypothesis(n, cg, kh, kw, pad, dil, h, w):
    c, groups = cg[0], cg[0] // cg[1]
    args = dict(stride=(1 + (h % 2), 1 + (w % 3 == 0)), padding=pad, dilation=dil, groups=groups)
    xs, ws = (n, c, h, w), (2 * groups, cg[1], kh, kw)
    if (kh - 1) * dil + 1 > h + 2 * pad or (kw - 1) * dil + 1 > w + 2 * pad:
        return
    check(conv2d_call(F, True, args), [randn(*xs, seed=h), randn(*ws, seed=w), randn(ws[0], seed=1)],
          torch_fn=conv2d_call(TF, True, args), dtypes=(np.float64,))


CONV1D = [
    ((2, 3, 10), (4, 3, 3), {}),
    ((1, 4, 11), (6, 2, 3), dict(stride=2, padding=1, groups=2)),
    ((2, 3, 9), (5, 3, 4), dict(padding="same", dilation=2)),
    ((2, 4, 9), (4, 1, 5), dict(padding="valid", groups=4)),
    ((3, 9), (5, 3, 2), dict(stride=3)),  # unbatched
]


@pytest.mark.parametrize("xs,ws,kw", CONV1D)
def test_conv1d_parity_and_gradcheck(xs, ws, kw):
    fn = lambda x, w, b: F.conv1d(x, w, b, **kw)  # noqa: E731
    tfn = lambda x, w, b: TF.conv1d(x, w, b, **kw)  # noqa: E731
    inputs = [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[0], seed=3)]
    both(fn, inputs, torch_fn=tfn)
    gradcheck(fn, inputs)


CONVT = [  # (input shape, weight shape (C_in, C_out/groups, kh, kw), kwargs)
    ((2, 4, 5, 4), (4, 3, 3, 3), {}),
    ((1, 4, 5, 4), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 4, 5), (4, 2, 3, 3), dict(stride=(3, 2), padding=(2, 0), output_padding=(2, 1), dilation=2)),
    ((2, 4, 4, 5), (4, 3, 2, 3), dict(groups=2, stride=2)),
    ((2, 4, 4, 4), (4, 1, 3, 3), dict(groups=4, padding=1)),  # depthwise
    ((2, 3, 3, 3), (3, 2, 4, 4), dict(stride=2, padding=1)),  # the usual 2x upsampling layer
    ((2, 2, 4, 5), (2, 3, 3, 3), dict(dilation=2, output_padding=1)),  # output_padding >= stride: a row more
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,kw", CONVT)
def test_conv_transpose2d_parity(xs, ws, kw, bias):
    groups = kw.get("groups", 1)
    if bias:
        fn = lambda m: lambda x, w, b: m.conv_transpose2d(x, w, b, **kw)  # noqa: E731
        inputs = [randn(*xs, seed=1), randn(*ws, seed=2), randn(ws[1] * groups, seed=3)]
    else:
        fn = lambda m: lambda x, w: m.conv_transpose2d(x, w, **kw)  # noqa: E731
        inputs = [randn(*xs, seed=1), randn(*ws, seed=2)]
    both(fn(F), inputs, torch_fn=fn(TF))
    if bias:
        gradcheck(fn(F), inputs, fast_mode=True)
        gradcheck(fn(F), [inputs[0][:1]] + inputs[1:])


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    # <conv2d(x, W), y> == <x, conv_transpose2d(y, W)> for the same stride/padding/dilation/groups
    x, w, y = randn(2, 4, 9, 8, seed=1), randn(6, 2, 3, 3, seed=2), randn(2, 6, 5, 4, seed=3)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    lhs = (F.conv2d(na.tensor(x), na.tensor(w), **kw).numpy() * y).sum()
    rhs = (x * F.conv_transpose2d(na.tensor(y), na.tensor(w), output_padding=(0, 1), **kw).numpy()).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


UNFOLD = [
    ((2, 3, 6, 5), dict(kernel_size=3)),
    ((1, 2, 7, 6), dict(kernel_size=(2, 3), stride=2, padding=1)),
    ((2, 2, 9, 8), dict(kernel_size=2, dilation=(2, 3), stride=(1, 2), padding=(0, 1))),
    ((2, 7, 6), dict(kernel_size=3, padding=1)),  # unbatched
]


@pytest.mark.parametrize("xs,kw", UNFOLD)
def test_unfold_parity_and_gradcheck(xs, kw):
    fn = lambda m: lambda x: m.unfold(x, **kw)  # noqa: E731
    check(fn(F), [randn(*xs, seed=1)], torch_fn=fn(TF))
    gradcheck(fn(F), [randn(*xs, seed=1)])


@pytest.mark.parametrize("xs,kw", UNFOLD)
def test_fold_parity_and_gradcheck(xs, kw):
    cols = TF.unfold(torch.zeros(xs), **kw).shape
    size = xs[-2:]
    fn = lambda m: lambda x: m.fold(x, size, **kw)  # noqa: E731
    check(fn(F), [randn(*cols, seed=2)], torch_fn=fn(TF))
    gradcheck(fn(F), [randn(*cols, seed=2)])


def test_conv2d_equals_unfold_matmul():
    x, w = randn(2, 3, 6, 6, seed=1), randn(4, 3, 3, 3, seed=2)
    cols = F.unfold(na.tensor(x), 3, padding=1)  # (N, 27, 36)
    y = (na.tensor(w.reshape(4, -1)) @ cols).reshape(2, 4, 6, 6)
    np.testing.assert_allclose(y.numpy(), F.conv2d(na.tensor(x), na.tensor(w), padding=1).numpy(), rtol=1e-12)


# -- errors ------------------------------------------------------------------------------------------
def t(*shape, dtype=np.float32):
    return na.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call,err,words",
    [
        (lambda: F.conv2d(t(2, 3, 5), t(4, 3, 3, 3)), ShapeError, "input channels"),  # 3-d = unbatched C=2
        (lambda: F.conv2d(t(3, 5), t(4, 3, 3, 3)), ShapeError, "4-d"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3)), ShapeError, "weight must be 4-d"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 2, 3, 3)), ShapeError, "has 3"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 1, 3, 3), groups=2), ShapeError, "divisible by groups"),
        (lambda: F.conv2d(t(1, 4, 5, 5), t(3, 2, 3, 3), groups=2), ShapeError, "out_channels"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), t(3)), ShapeError, "bias"),
        (lambda: F.conv2d(t(1, 3, 2, 5), t(4, 3, 3, 3)), ShapeError, "larger than the padded input"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), dilation=3), ShapeError, "dilated"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=2, padding="same"), ConfigError, "same"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding="full"), ConfigError, "padding"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=0), ConfigError, "stride"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding=-1), ConfigError, "padding"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3, dtype=np.float64)), DTypeError, "dtype"),
        (lambda: F.conv2d(t(1, 3, 5, 5, dtype=np.int64), t(4, 3, 3, 3, dtype=np.int64)), DTypeError, "floating"),
        (lambda: F.conv1d(t(1, 3, 5), t(4, 3, 3), stride=2, padding="same"), ConfigError, "same"),
        (lambda: F.conv1d(t(1, 3, 5), t(4, 3, 3, 1)), ShapeError, "3-d"),
        (lambda: F.conv1d(t(1, 3, 2), t(4, 3, 3)), ShapeError, "larger"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(4, 2, 3, 3)), ShapeError, "input channels"),
        (lambda: F.conv_transpose2d(t(1, 4, 5, 5), t(4, 2, 3, 3), output_padding=1), ConfigError, "output_padding"),
        (lambda: F.conv_transpose2d(t(1, 4, 1, 1), t(4, 2, 1, 1), padding=1), ShapeError, "empty output"),
        (lambda: F.unfold(t(1, 3, 2, 2), 3), ShapeError, "does not fit"),
        (lambda: F.fold(t(1, 12, 5), (4, 4), 2), ShapeError, "blocks"),
        (lambda: F.fold(t(1, 10, 9), (4, 4), 2), ShapeError, "divisible"),
    ],
)
def test_errors(call, err, words):
    with pytest.raises(err, match=words):
        call()
