"""The one parity helper: run the same computation in neural-arch and in torch,
compare forward values and the gradients of every input.

    check(lambda x, y: x * y, [a, b])                 # same code for both frameworks
    check(lambda x: na.exp(x), [a], torch_fn=lambda x: torch.exp(x))

Inputs are NumPy arrays (float64 masters); each run casts them to the dtype
under test. Backward uses a non-uniform upstream gradient, so a wrong
broadcast reduction or a transposed gradient cannot hide behind a sum.
"""

from __future__ import annotations

import contextlib

import ml_dtypes
import numpy as np
import torch

import neural_arch as na
from parity_record import claim, confirm, witness
from reference_names import Recorder

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
TOL = {  # (rtol, atol): float64 tight, float32 at float32 precision, half as torch.testing's defaults
    np.float64: (1e-9, 1e-11),
    np.float32: (2e-5, 2e-6),
    BF16: (1.6e-2, 1e-5),
    F16: (1e-3, 1e-5),
}
TOL.update({np.dtype(k): v for k, v in list(TOL.items())})  # looked up by scalar type or by dtype


def torch_tensor(a, requires_grad=False):
    """A torch tensor of the NumPy array ``a`` in ``a``'s dtype (bfloat16 included, which torch cannot read)."""
    if a.dtype == BF16:
        return torch.tensor(a.astype(np.float32)).to(torch.bfloat16).requires_grad_(requires_grad)
    return torch.tensor(a, requires_grad=requires_grad)


def torch_numpy(t):
    """``t.numpy()`` for any torch float dtype (bfloat16 comes back as float32, exactly)."""
    t = t.detach()
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _to_na(a, dtype, grad, noncontig):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        arr = a.astype(dtype)
        if noncontig and arr.ndim >= 2:
            arr = np.asfortranarray(arr)  # same values, non-C-contiguous memory
        return na.Tensor(arr, requires_grad=grad)
    if isinstance(a, np.ndarray):
        return na.Tensor(a)
    return a


def _to_torch(a, dtype, grad):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return torch_tensor(a.astype(dtype), requires_grad=grad)
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a.copy())
    return a


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_close(ours, ref, rtol, atol, what=""):
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch {ref.shape}"
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, ref, err_msg=what)
        return
    np.testing.assert_allclose(ours.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=what, equal_nan=True)


def check(fn, inputs, torch_fn=None, dtypes=(np.float64, np.float32), grad=True, rtol=None, atol=None,
          noncontig=False, seed=0, check_dtype=True):
    """Compare ``fn`` on neural-arch tensors with ``torch_fn`` (default ``fn``) on torch tensors.

    ``inputs``: NumPy arrays (float ones get ``requires_grad`` when ``grad``)
    or plain Python values passed through unchanged.
    """
    torch_fn = torch_fn or fn
    rng = np.random.default_rng(seed)
    reference = Recorder()  # the torch names the reference calls: recorded once the comparison has passed
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        r, a = TOL[dtype]
        r, a = rtol or r, atol or a
        if dtype != np.float64 and rtol is not None:  # a per-op tolerance never tightens a dtype's own
            r = max(rtol, TOL[dtype][0])
        if dtype != np.float64 and atol is not None:
            a = max(atol, TOL[dtype][1])
        ours_in = [_to_na(x, dtype, grad, noncontig) for x in inputs]
        ref_in = [_to_torch(x, dtype, grad) for x in inputs]
        ours = _as_list(fn(*ours_in))
        with reference:
            refs = _as_list(torch_fn(*ref_in))
        assert len(ours) == len(refs), f"{len(ours)} outputs vs torch's {len(refs)}"
        for k, (o, t) in enumerate(zip(ours, refs)):
            assert_close(o.detach().numpy(), torch_numpy(t), r, a, f"forward output {k} ({np.dtype(dtype)})")
            if check_dtype:
                assert str(o.dtype) == str(t.dtype).removeprefix("torch."), f"dtype {o.dtype} vs torch {t.dtype}"
        if not grad:
            continue
        loss_terms = []
        for o, t in zip(ours, refs):
            if not t.requires_grad:
                continue
            up = rng.standard_normal(t.shape).astype(dtype)
            loss_terms.append((o, t, up))
        if not loss_terms:
            continue
        torch.autograd.backward([t for _, t, _ in loss_terms], [torch_tensor(u) for _, _, u in loss_terms])
        for o, _, u in loss_terms:
            o.backward(na.Tensor(u), retain_graph=True)
        for k, (x, xt) in enumerate(zip(ours_in, ref_in)):
            if isinstance(xt, torch.Tensor) and xt.requires_grad:
                if xt.grad is None:
                    assert x.grad is None or not np.any(x.grad.numpy()), f"input {k}: torch has no grad"
                    continue
                assert x.grad is not None, f"input {k}: no gradient (torch has one)"
                assert_close(x.grad.numpy(), torch_numpy(xt.grad), r, a * 10, f"grad of input {k} ({np.dtype(dtype)})")
    claim(reference.names)


def gradcheck(fn, inputs, fast_mode=False, **kw):
    """Our finite-difference check, float64, on inputs given as NumPy arrays."""
    tensors = [na.Tensor(x.astype(np.float64), requires_grad=True) if isinstance(x, np.ndarray) and x.dtype.kind == "f"
               else (na.Tensor(x) if isinstance(x, np.ndarray) else x) for x in inputs]
    return na.gradcheck(fn, tensors, fast_mode=fast_mode, **kw)


def randn(*shape, seed=0, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale)


def rand_pos(*shape, seed=0, low=0.5, high=2.0):
    return np.asarray(np.random.default_rng(seed).uniform(low, high, shape))


@contextlib.contextmanager
def reference():
    """For a comparison written without ``check``: run the torch side inside ``with reference():``. The torch
    names it calls (functions, Tensor methods, the modules it runs, the optimizers, schedulers, datasets,
    loaders and distributions it builds) are claimed for the parity record (``parity_record.py``) by the next
    ``compare`` of the test that passes, if the test then passes; without one they claim nothing."""
    with Recorder() as seen:
        yield seen
    witness(seen.names)


def _parts(value):
    """The parts of a container (a list or tuple; a dict as its sorted keys, then its values in key order),
    or None for a single value."""
    if isinstance(value, dict):
        return [sorted(value), *(value[k] for k in sorted(value))]
    return list(value) if isinstance(value, (list, tuple)) else None


def _array(value):
    """A single value of ours or torch's as a NumPy array (tensors of any dtype, bfloat16 included; numbers)."""
    if isinstance(value, torch.Tensor):
        return torch_numpy(value)
    if isinstance(value, na.Tensor):
        return value.detach().numpy()
    return np.asarray(value)


def compare(ours, ref, rtol=0.0, atol=0.0, what="value"):
    """Assert that ``ours`` (neural-arch's result) equals ``ref`` (torch's) within ``rtol``/``atol`` (exactly by
    default); shapes must agree, and dtypes where both are tensors. Tensors, arrays, numbers and nested
    lists/tuples/dicts of them (an lr list, a batch of a loader). Once it passes, the torch names the test's
    ``reference()`` blocks used so far count as compared (``parity_record.confirm``)."""
    ref_parts = _parts(ref)
    if ref_parts is not None:
        ours_parts = _parts(ours)
        assert ours_parts is not None and len(ours_parts) == len(ref_parts), f"{what}: {ours!r} vs torch {ref!r}"
        for k, (o, r) in enumerate(zip(ours_parts, ref_parts)):
            compare(o, r, rtol, atol, f"{what}[{k}]")
        return
    if isinstance(ours, na.Tensor) and isinstance(ref, torch.Tensor):
        ref_dtype = str(ref.dtype).removeprefix("torch.")
        assert str(ours.dtype) == ref_dtype, f"{what}: dtype {ours.dtype} vs torch {ref_dtype}"
    ours_arr, ref_arr = _array(ours), _array(ref)
    if ref_arr.dtype.kind in "biuOUS" or ours_arr.dtype.kind in "OUS" or (rtol == 0 and atol == 0):
        assert ours_arr.shape == ref_arr.shape, f"{what}: shape {ours_arr.shape} != torch {ref_arr.shape}"
        np.testing.assert_array_equal(ours_arr, ref_arr, err_msg=what)
    else:
        assert_close(ours_arr, ref_arr, rtol, atol, what)
    confirm()


def attribute(obj, name):
    """torch's attribute ``name`` of a module (``F.GRID_SAMPLE_PADDING_MODES``) or of a tensor (``t.mT``), read as
    a reference: a read makes no call the recorder sees, so the name is witnessed here and claimed, like a
    ``reference()`` block's, by the next ``compare`` of the test that passes."""
    value = getattr(obj, name)
    owner = "torch.Tensor" if isinstance(obj, torch.Tensor) else obj.__name__
    witness({f"{owner}.{name}"})
    return value
