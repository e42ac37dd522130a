"""The regularized incomplete gamma functions, torch's ``igamma`` and ``igammac`` (``torch.special.gammainc``
and ``gammaincc``): SciPy's ``gammainc``/``gammaincc`` (the ``special`` extra) forward, the closed-form
derivative in ``x`` backward.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import GradientError
from neural_arch.ops._operands import as_floating as _floating
from neural_arch.ops._operands import binary_operands
from neural_arch.ops.pointwise import _special

__all__ = ["igamma", "igammac"]


class RegularizedGamma(Function):
    """P(a, x) = gamma(a, x) / Gamma(a) = (1 / Gamma(a)) int_0^x t^(a-1) e^-t dt   (``upper``: Q = 1 - P)

    dP/dx = x^(a-1) e^-x / Gamma(a) = exp((a - 1) log x - x - lgamma a)       dQ/dx = -dP/dx
    dP/da has no closed form; torch does not implement it either, and neither is it here (GradientError).
    """

    half = "float32"

    @staticmethod
    def forward(ctx, a, x, upper=False):
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        special = _special()
        return (special.gammaincc if upper else special.gammainc)(a, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            name = "igammac" if ctx.upper else "igamma"
            raise GradientError(f"{name}: the derivative in the first argument (a) is not implemented (torch has "
                                "none either); detach a (a.detach()) and differentiate in x only")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            density = np.exp((a - 1) * np.log(x) - x - _special().gammaln(a))
        gx = grad * (-density if ctx.upper else density)
        return None, gx.astype(grad.dtype, copy=False)


def igamma(input, other) -> Tensor:  # noqa: A002 - torch's names
    """The regularized lower incomplete gamma function P(input, other) (``torch.igamma``); differentiable in
    ``other`` only, as torch's."""
    a, x = binary_operands(input, other)
    return RegularizedGamma.apply(_floating(a), _floating(x))


def igammac(input, other) -> Tensor:  # noqa: A002
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P(input, other)
    (``torch.igammac``); differentiable in ``other`` only, as torch's."""
    a, x = binary_operands(input, other)
    return RegularizedGamma.apply(_floating(a), _floating(x), upper=True)
