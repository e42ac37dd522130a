"""torch.nn.functional (and a few linalg/fft) names with no comparison elsewhere, against torch's: the in-place
activations, the dropouts where they are deterministic (eval mode, p=0), the pools that return indices called
by their own names, one_hot, the deprecated upsample aliases, the grid_sample mode tables, the ``*_ex`` linear
algebra forms and the fft frequency grids."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import attribute, check, compare, randn, reference

import neural_arch as na
import neural_arch.fft as na_fft
import neural_arch.linalg as na_linalg
import neural_arch.nn.functional as F

X = randn(3, 5, seed=3, scale=2.0)

INPLACE = {  # name: extra arguments after the input
    "relu_": (), "elu_": (0.7,), "celu_": (1.3,), "selu_": (), "leaky_relu_": (0.1,), "hardtanh_": (-0.5, 0.8),
    "rrelu_": (0.1, 0.3, False), "threshold_": (0.2, -1.0),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_activations_write_torchs_values_into_the_input(name):
    args = INPLACE[name]
    ours_in, ref_in = na.tensor(X.copy()), torch.tensor(X.copy())
    with na.no_grad():
        ours = getattr(F, name)(ours_in, *args)
    with reference():
        ref = getattr(TF, name)(ref_in, *args)
    compare([ours, ours_in], [ref, ref_in], rtol=1e-15, atol=1e-15)


DROPOUTS = {  # name: input shape (the feature dropouts take channels)
    "dropout": (3, 5), "alpha_dropout": (3, 5), "feature_alpha_dropout": (2, 3, 4), "dropout1d": (2, 3, 4),
    "dropout2d": (2, 3, 4, 4), "dropout3d": (2, 3, 2, 3, 2),
}


@pytest.mark.parametrize("name", sorted(DROPOUTS))
@pytest.mark.parametrize("p,training", [(0.4, False), (0.0, True)], ids=["eval", "p=0"])
def test_dropouts_where_they_are_deterministic(name, p, training):
    x = randn(*DROPOUTS[name], seed=4)
    check(lambda t: getattr(F, name)(t, p, training), [x], torch_fn=lambda t: getattr(TF, name)(t, p, training))


def test_sigmoid_tanh_and_one_hot_by_their_functional_names():
    check(F.sigmoid, [X], torch_fn=TF.sigmoid)
    check(F.tanh, [X], torch_fn=TF.tanh)
    labels = np.array([[0, 3], [4, 1]], dtype=np.int64)
    check(lambda i: F.one_hot(i, 6), [labels], torch_fn=lambda i: TF.one_hot(i, 6), grad=False)
    check(lambda i: F.one_hot(i), [labels], torch_fn=lambda i: TF.one_hot(i), grad=False)


POOLS = {  # name: (input shape, arguments)
    "max_pool1d": ((2, 3, 9), (3, 2)), "max_pool2d": ((2, 3, 7, 6), ((3, 2), 2, 1)),
    "max_pool3d": ((1, 2, 5, 4, 6), (2,)), "adaptive_max_pool1d": ((2, 3, 9), (4,)),
    "adaptive_max_pool2d": ((2, 3, 7, 6), ((3, 4),)), "adaptive_max_pool3d": ((1, 2, 5, 4, 6), ((2, 3, 2),)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pools_with_indices_by_both_names(name):
    shape, args = POOLS[name]
    x = randn(*shape, seed=5)
    check(lambda t: getattr(F, name)(t, *args), [x], torch_fn=lambda t: getattr(TF, name)(t, *args))
    with_indices = f"{name}_with_indices"
    check(lambda t: getattr(F, with_indices)(t, *args), [x], torch_fn=lambda t: getattr(TF, with_indices)(t, *args))


@pytest.mark.parametrize("nd,kernel,out", [(2, 2, (4, 3)), (3, (2, 3, 2), (5, 4, 3))])
def test_fractional_max_pools_with_fixed_samples_by_both_names(nd, kernel, out):
    x = randn(2, 3, 9, 8, seed=12) if nd == 2 else randn(2, 3, 9, 8, 7, seed=12)
    samples = np.random.default_rng(13).random((2, 3, nd))
    for name in (f"fractional_max_pool{nd}d", f"fractional_max_pool{nd}d_with_indices"):
        check(lambda t, name=name: getattr(F, name)(t, kernel, out, _random_samples=samples.astype(t.data.dtype)),
              [x], torch_fn=lambda t, name=name: getattr(TF, name)(
                  t, kernel, out, _random_samples=torch.tensor(samples, dtype=t.dtype)))


def test_deprecated_upsample_aliases():
    x = randn(1, 2, 3, 4, seed=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch says they are deprecated
        check(lambda t: F.upsample_bilinear(t, scale_factor=2), [x],
              torch_fn=lambda t: TF.upsample_bilinear(t, scale_factor=2))
        check(lambda t: F.upsample_nearest(t, size=(5, 7)), [x], torch_fn=lambda t: TF.upsample_nearest(t, size=(5, 7)))


def test_grid_sample_mode_tables():
    for name in ("GRID_SAMPLE_INTERPOLATION_MODES", "GRID_SAMPLE_PADDING_MODES"):
        compare(getattr(F, name), attribute(TF, name), what=name)


SPD = randn(3, 3, seed=6) @ randn(3, 3, seed=6).T + 3 * np.eye(3)


def test_linalg_ex_forms_and_matmul():
    check(lambda a: na_linalg.cholesky_ex(a), [SPD], torch_fn=lambda a: torch.linalg.cholesky_ex(a))
    check(lambda a: na_linalg.inv_ex(a), [SPD], torch_fn=lambda a: torch.linalg.inv_ex(a))
    b = randn(3, 2, seed=7)
    check(lambda a, v: na_linalg.solve_ex(a, v), [SPD, b], torch_fn=lambda a, v: torch.linalg.solve_ex(a, v))
    check(lambda a, v: na_linalg.matmul(a, v), [SPD, b], torch_fn=lambda a, v: torch.linalg.matmul(a, v))


@pytest.mark.parametrize("n,d", [(8, 1.0), (7, 0.25)])
def test_fft_frequency_grids(n, d):
    # float32 grids (the default dtype): one float32 rounding apart where 1/(n*d) is inexact
    for ours, theirs in ((na_fft.fftfreq, torch.fft.fftfreq), (na_fft.rfftfreq, torch.fft.rfftfreq)):
        check(lambda f=ours: f(n, d), [], torch_fn=lambda f=theirs: f(n, d), dtypes=(np.float64,), rtol=1.2e-7,
              atol=1e-30)
