"""Finite-difference gradient checking, in float64.

``gradcheck(fn, inputs)`` compares the gradient that backward computes with
central differences ``(f(x + eps) - f(x - eps)) / 2 eps``. The output is
reduced to a scalar with a fixed random weighting ``L = sum(w * fn(x))`` so
one backward checks the whole vector-Jacobian product.

* ``fast_mode=False`` (exact): one pair of evaluations per input element.
* ``fast_mode=True``: one pair per input along a random direction ``v``,
  comparing the directional derivative ``<grad, v>`` (Chainer's
  ``check_backward`` and torch's fast mode do the same). Cheap enough for
  large inputs.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import DTypeError, GradientError


def _scalarize(out, weights):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return sum(float((o.data.astype(np.float64) * w).sum()) for o, w in zip(outs, weights))


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              fast_mode: bool = False, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check ``fn``'s backward against central finite differences.

    ``inputs`` is a tuple of Tensors; those with ``requires_grad=True`` are
    checked and must be float64. Returns True, or raises GradientError with
    the worst mismatch (``raise_exception=False`` returns False instead).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise GradientError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise DTypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")
    rng = np.random.default_rng(seed)

    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    weights = [rng.standard_normal(o.shape) for o in outs]
    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    loss = None
    for o, w in zip(outs, weights):
        if o.requires_grad:
            term = (o * Tensor(w.astype(o.dtype))).sum()
            loss = term if loss is None else loss + term
    if loss is None:
        raise GradientError("gradcheck: the function's output does not require grad")
    loss.backward()
    analytic = {i: (inputs[i].grad.data.copy() if inputs[i].grad is not None else np.zeros(inputs[i].shape))
                for i in checked}

    def f() -> float:
        with no_grad():
            return _scalarize(fn(*inputs), weights)

    for i in checked:
        x = inputs[i].data
        if not x.flags.writeable:
            raise GradientError(f"gradcheck: input {i} is a read-only view (e.g. from expand); pass a copy")
        if fast_mode:
            v = rng.standard_normal(x.shape)
            orig = x.copy()
            x += eps * v
            fp = f()
            x[...] = orig - eps * v
            fm = f()
            x[...] = orig
            numeric = (fp - fm) / (2 * eps)
            got = float((analytic[i] * v).sum())
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                return _fail(raise_exception, f"input {i}: directional derivative {got:.8g} vs numeric {numeric:.8g}")
            continue
        numeric = np.zeros(x.shape)
        flat, nflat = x.flat, numeric.reshape(-1)  # x.flat writes through to x even when x is a strided view
        for k in range(x.size):
            old = flat[k]
            flat[k] = old + eps
            fp = f()
            flat[k] = old - eps
            fm = f()
            flat[k] = old
            nflat[k] = (fp - fm) / (2 * eps)
        err = np.abs(analytic[i] - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            k = np.unravel_index(np.argmax(err - rtol * np.abs(numeric)), x.shape)
            return _fail(raise_exception, f"input {i}: at index {tuple(int(j) for j in k)} analytic "
                         f"{analytic[i][k]:.8g} vs numeric {numeric[k]:.8g} ({int(bad.sum())} of "
                         f"{x.size} elements differ)")
    return True


def _fail(raise_exception: bool, msg: str) -> bool:
    if raise_exception:
        raise GradientError("gradcheck failed: " + msg)
    return False
