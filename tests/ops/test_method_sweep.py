"""Tensor methods and torch functions that no other test compares, against torch's, one table per call shape:
unary (``x.name()``, ``torch.name(x)``) and binary (``x.name(y)``, ``torch.name(x, y)``) on inputs in
(0.2, 0.8) and (0.3, 0.9), where every one of them is defined. Forward and backward (float64 and float32)
where torch differentiates the result; values only for in-place methods (run on a clone, outside the
graph), integer/boolean/complex results and ops torch does not differentiate; plain Python results
(``numel``, ``is_contiguous``, ``equal``) and properties (``mT``, ``shape``, ``itemsize``) through ``compare``.

The tables were drawn up from the names the coverage report listed as present with no recorded comparison;
an op added later gets its own test with its family, not a row here."""

import numpy as np
import pytest
import torch
from parity import attribute, check, compare, reference

import neural_arch as na

X = np.random.default_rng(0).uniform(0.2, 0.8, (3, 4))
Y = np.random.default_rng(1).uniform(0.3, 0.9, (3, 4))

METHODS_UNARY = """
    all angle any argmax argmin argsort argwhere bool byte ceil char clone conj_physical corrcoef count_nonzero cov
    cpu diag_embed diagflat diff double fliplr float floor half i0 int isfinite isinf isnan isneginf isposinf isreal
    logical_not long mode msort nanmean nanmedian neg pinverse resolve_neg round short sign signbit svd trace trunc
""".split()

METHODS_BINARY = """
    add arctan2 atan2 clamp_min clip copysign cross dist div divide eq expand_as float_power fmax fmin fmod ge gt
    hypot inner isclose kron ldexp le logaddexp logaddexp2 logical_and logical_or logical_xor lt mul multiply ne
    new_tensor pow remainder reshape_as sub subtract true_divide view_as xlogy
""".split()

METHODS_UNARY_VALUES = """
    abs_ absolute_ acos_ acosh_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ cdouble
    ceil_ cfloat conj_physical_ cos_ cosh_ deg2rad_ detach_ digamma_ erf_ erfc_ erfinv_ exp2_ exp_ expm1_ fix_
    floor_ frac_ frexp i0_ lgamma_ log10_ log1p_ log2_ log_ logical_not_ logit_ nan_to_num_ neg_ negative_ qr
    rad2deg_ reciprocal_ relu_ requires_grad_ round_ rsqrt_ sgn sgn_ sigmoid_ sign_ sin_ sinc_ sinh_ sqrt_ square_
    tan_ tanh_ tril_ triu_ trunc_ zero_
""".split()

METHODS_BINARY_VALUES = """
    add_ arctan2_ atan2_ clamp_ clamp_max_ clamp_min_ clip_ copy_ copysign_ div_ divide_ eq_ floor_divide
    floor_divide_ fmod_ ge_ greater_ greater_equal_ gt_ heaviside heaviside_ hypot_ ldexp_ le_ less_ less_equal_
    logical_and_ logical_or_ logical_xor_ lt_ mul_ multiply_ ne_ nextafter nextafter_ not_equal_ pow_ remainder_
    sub_ subtract_ true_divide_ xlogy_
""".split()

TORCH_UNARY = """
    all amax amin any argmax argmin as_tensor broadcast_tensors celu conj_physical cos count_nonzero expm1 flatten
    isfinite isinf isnan log log1p logical_not max mean min neg ones_like prod rsqrt selu sin sqrt squeeze std
    std_mean t tril triu unbind var var_mean zeros_like
""".split()

TORCH_BINARY = """
    clamp clamp_max clip div eq ge gt le logical_and logical_or logical_xor lt maximum minimum mul ne pow
""".split()

TORCH_UNARY_VALUES = """
    Tensor abs_ acos_ acosh_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ ceil_
    conj_physical_ cos_ cosh_ deg2rad_ erf_ erfc_ exp2_ exp_ expm1_ fix_ floor_ frac_ i0_ log10_ log1p_ log2_ log_
    logit_ nan_to_num_ neg_ negative_ rad2deg_ reciprocal_ relu_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_
    square_ tan_ tanh_ trunc_ unique_consecutive
""".split()

TORCH_BINARY_VALUES = """
    clamp_ clamp_max_ clamp_min_ clip_ ldexp_ xlogy_
""".split()

METHODS_BINARY_F64 = """
    float_power_
""".split()

TORCH_UNARY_F64 = """
    DoubleTensor
""".split()

METHODS_PLAIN = """
    allclose dim element_size equal is_complex is_conj is_contiguous is_floating_point is_neg is_same_size is_signed
    ndimension nelement numel stride tolist
""".split()

TORCH_PLAIN = """
    allclose equal is_complex
""".split()


def _method(name):
    """``x.name(*rest)``; an in-place method runs on a clone (the inputs stay as they were)."""
    if name.endswith("_"):
        return lambda x, *rest: getattr(x.clone(), name)(*rest)
    return lambda x, *rest: getattr(x, name)(*rest)


@pytest.mark.parametrize("name", METHODS_UNARY)
def test_unary_method(name):
    check(_method(name), [X])


@pytest.mark.parametrize("name", METHODS_BINARY)
def test_binary_method(name):
    check(_method(name), [X, Y])


@pytest.mark.parametrize("name", METHODS_UNARY_VALUES)
def test_unary_method_values(name):
    check(_method(name), [X], grad=False)


@pytest.mark.parametrize("name", METHODS_BINARY_VALUES + METHODS_BINARY_F64)
def test_binary_method_values(name):
    # float_power_ keeps the input's dtype, and torch refuses float32 for it (float_power is float64)
    dtypes = (np.float64,) if name in METHODS_BINARY_F64 else (np.float64, np.float32)
    check(_method(name), [X, Y], grad=False, dtypes=dtypes)


def _function(name):
    return (lambda *a: getattr(na, name)(*a)), (lambda *a: getattr(torch, name)(*a))


@pytest.mark.parametrize("name", TORCH_UNARY)
def test_unary_function(name):
    ours, theirs = _function(name)
    check(ours, [X], torch_fn=theirs)


@pytest.mark.parametrize("name", TORCH_BINARY)
def test_binary_function(name):
    ours, theirs = _function(name)
    check(ours, [X, Y], torch_fn=theirs)


@pytest.mark.parametrize("name", TORCH_UNARY_VALUES + TORCH_UNARY_F64)
def test_unary_function_values(name):
    ours, theirs = _function(name)
    dtypes = (np.float64,) if name in TORCH_UNARY_F64 else (np.float64, np.float32)  # DoubleTensor: float64
    check(ours, [X], torch_fn=theirs, grad=False, dtypes=dtypes)


@pytest.mark.parametrize("name", TORCH_BINARY_VALUES)
def test_binary_function_values(name):
    ours, theirs = _function(name)
    check(ours, [X, Y], torch_fn=theirs, grad=False)


BINARY_PLAIN = {"allclose", "equal", "is_same_size"}


@pytest.mark.parametrize("name", METHODS_PLAIN + [f"torch.{n}" for n in TORCH_PLAIN])
def test_plain_python_results(name):
    function = name.startswith("torch.")
    name = name.removeprefix("torch.")
    args = [X, Y] if name in BINARY_PLAIN else [X]
    ours_args, torch_args = [na.tensor(a) for a in args], [torch.tensor(a) for a in args]
    ours = getattr(na, name)(*ours_args) if function else getattr(ours_args[0], name)(*ours_args[1:])
    with reference():
        ref = getattr(torch, name)(*torch_args) if function else getattr(torch_args[0], name)(*torch_args[1:])
    compare(ours, ref)


PROPERTIES = ["T", "H", "mT", "mH", "real", "data", "shape", "ndim", "itemsize", "nbytes", "requires_grad",
              "is_leaf", "is_cpu", "dtype", "device", "grad_fn"]


@pytest.mark.parametrize("name", PROPERTIES)
def test_properties(name):
    ours, ref = na.tensor(X), torch.tensor(X)
    got, want = getattr(ours, name), attribute(ref, name)
    if name in ("shape", "dtype", "device"):  # torch.Size, torch.float64, device(type='cpu') as plain values
        got, want = (list(got), list(want)) if name == "shape" else (str(got), str(want).removeprefix("torch."))
    compare(got, want)


def test_grad_property_after_backward():
    ours, ref = na.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    (ours * ours).sum().backward()
    (ref * ref).sum().backward()
    compare(ours.grad, attribute(ref, "grad"))
