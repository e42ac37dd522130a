"""no_grad, enable_grad, inference_mode, set_grad_enabled: context managers, decorators, nesting."""

import pytest

import neural_arch as na


def _x():
    return na.ones(2, requires_grad=True)


def test_no_grad_records_nothing_and_restores():
    x = _x()
    with na.no_grad():
        y = x * 2
        assert not na.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert na.is_grad_enabled() and (x * 2).requires_grad


def test_enable_grad_inside_no_grad_and_nesting():
    x = _x()
    with na.no_grad():
        with na.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_inference_mode_and_its_off_switch():
    x = _x()
    with na.inference_mode():
        assert not (x * 2).requires_grad
        with na.inference_mode(False):
            assert (x * 2).requires_grad
    assert na.is_grad_enabled()


def test_set_grad_enabled_as_function_and_context_manager():
    x = _x()
    with na.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert na.is_grad_enabled()
    na.set_grad_enabled(False)  # takes effect at once, as in torch
    try:
        assert not na.is_grad_enabled()
    finally:
        na.set_grad_enabled(True)
    assert na.is_grad_enabled()


def test_modes_as_decorators_with_and_without_parentheses():
    @na.no_grad()
    def a(t):
        return t * 2

    @na.no_grad
    def b(t):
        return t * 2

    @na.inference_mode()
    def c(t):
        return t * 2

    @na.set_grad_enabled(False)
    def d(t):
        return t * 2

    assert na.is_grad_enabled()  # decorating must not switch the mode
    x = _x()
    assert not any(f(x).requires_grad for f in (a, b, c, d))

    @na.enable_grad()
    def e(t):
        return t * 2

    with na.no_grad():
        assert e(x).requires_grad
    assert a.__name__ == "a"  # functools.wraps


def test_modes_restore_on_exceptions():
    with pytest.raises(ZeroDivisionError):
        with na.no_grad():
            1 / 0  # noqa: B018 - the error under test
    assert na.is_grad_enabled()


def test_backward_of_graph_built_before_no_grad_still_works():
    x = _x()
    y = (x * 3).sum()
    with na.no_grad():
        y.backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_no_grad_allows_in_place_updates_of_leaves():
    w = _x()
    (w * 2).sum().backward()
    with na.no_grad():
        w -= w.grad * 0.5
    assert w.tolist() == [0.0, 0.0] and w.requires_grad and w.is_leaf
