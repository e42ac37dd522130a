"""detect_anomaly: NumericalError naming the op whose forward or backward made NaN/Inf."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch.errors import NumericalError


def test_forward_nan_from_log_of_negative_names_log():
    x = na.tensor([-1.0, 2.0], requires_grad=True)
    with na.detect_anomaly():
        with np.errstate(invalid="ignore"):
            with pytest.raises(NumericalError, match="forward of Log produced NaN"):
                x.log()


def test_forward_inf_from_exp_overflow_names_exp():
    x = na.tensor([1000.0])
    with na.detect_anomaly(), np.errstate(over="ignore"):
        with pytest.raises(NumericalError, match="forward of Exp produced Inf"):
            x.exp()


def test_backward_inf_from_sqrt_at_zero_names_sqrt():
    x = na.tensor([0.0, 4.0], requires_grad=True)
    with na.detect_anomaly():
        y = x.sqrt().sum()  # forward is finite: sqrt(0) = 0
        with np.errstate(divide="ignore"), pytest.raises(NumericalError, match="backward of Sqrt produced Inf"):
            y.backward()


def test_backward_nan_from_zero_times_inf_names_the_op():
    # d/dx x^0.5 at 0 is inf; the upstream gradient is 0, so the backward of pow gives 0 * inf = nan
    x = na.tensor([0.0, 1.0], requires_grad=True)
    with na.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        y = (x.pow(0.5) * 0.0).sum()  # forward 0, backward 0 * inf = nan inside PowScalar
        with pytest.raises(NumericalError, match="backward of PowScalar produced"):
            y.backward()


def test_without_anomaly_mode_nans_pass_silently_and_mode_restores():
    x = na.tensor([0.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()).all()
    assert not na.is_anomaly_enabled()
    with na.detect_anomaly():
        assert na.is_anomaly_enabled()
        with na.detect_anomaly(False):
            assert not na.is_anomaly_enabled()
    assert not na.is_anomaly_enabled()


def test_numerical_error_is_a_floating_point_error():
    assert issubclass(NumericalError, FloatingPointError)
