"""torch functions and Tensor methods with their own call shapes that no other test compares, written once for
both frameworks (``m`` is ``torch`` or ours, ``x.name(...)`` a method of either's tensors; ours is ``torch`` as
drop-in mode resolves it, which is what the coverage report counts) and run through ``parity.check``: forward,
and backward where torch differentiates (``grad=True``). In-place methods run on a clone. The dtypes and
constants are compared as values through ``parity.attribute``."""

import numpy as np
import pytest
import torch
from parity import attribute, check, compare, randn, reference

import neural_arch as na
from neural_arch.compat import facade

DROP_IN = facade.build("torch")  # ``torch`` as a script sees it in drop-in mode: what the coverage report counts

X, Y = randn(3, 4, seed=1), randn(3, 4, seed=2)
S = randn(3, 3, seed=3) + 3 * np.eye(3)  # well conditioned
SPD = S @ S.T
B1, B2, B3 = randn(2, 3, 4, seed=4), randn(2, 4, 5, seed=5), randn(3, 5, seed=6)
V3, V4 = randn(3, seed=7), randn(4, seed=8)
INT = np.array([[12, 18, 7], [9, 4, 30]], dtype=np.int64)
INT2 = np.array([[8, 27, 14], [6, 10, 5]], dtype=np.int64)
IDX = np.array([2, 0], dtype=np.int64)
MASK = X > 0.2
POS = np.abs(X) + 0.5


def _clone(x):
    return x.clone()


# name: (fn(m, *inputs) with m the framework, inputs, grad)
CASES = {
    # torch functions
    "torch.addcdiv": (lambda m, a, b, c: m.addcdiv(a, b, c, value=0.5), [X, Y, POS], True),
    "torch.alpha_dropout": (lambda m, a: m.alpha_dropout(a, 0.5, False), [X], True),
    "torch.feature_alpha_dropout": (lambda m, a: m.feature_alpha_dropout(a, 0.5, False), [B1], True),
    "torch.arange": (lambda m: m.arange(1.0, 4.0, 0.5, dtype=m.float64), [], False),
    "torch.linspace": (lambda m: m.linspace(-1.0, 2.0, 7, dtype=m.float64), [], False),
    "torch.logspace": (lambda m: m.logspace(-1.0, 2.0, 5, base=3.0, dtype=m.float64), [], False),
    "torch.eye": (lambda m: m.eye(3, 4, dtype=m.float64), [], False),
    "torch.full": (lambda m: m.full((2, 3), 1.5, dtype=m.float64), [], False),
    "torch.bartlett_window": (lambda m: m.bartlett_window(7, dtype=m.float64), [], False),
    "torch.blackman_window": (lambda m: m.blackman_window(7, periodic=False, dtype=m.float64), [], False),
    "torch.hamming_window": (lambda m: m.hamming_window(8, dtype=m.float64), [], False),
    "torch.hann_window": (lambda m: m.hann_window(8, dtype=m.float64), [], False),
    "torch.kaiser_window": (lambda m: m.kaiser_window(8, True, 6.0, dtype=m.float64), [], False),
    "torch.tril_indices": (lambda m: m.tril_indices(4, 3, offset=-1), [], False),
    "torch.triu_indices": (lambda m: m.triu_indices(3, 4, offset=1), [], False),
    "torch.bitwise_and": (lambda m, a, b: m.bitwise_and(a, b), [INT, INT2], False),
    "torch.bitwise_or": (lambda m, a, b: m.bitwise_or(a, b), [INT, INT2], False),
    "torch.bitwise_xor": (lambda m, a, b: m.bitwise_xor(a, b), [INT, INT2], False),
    "torch.bitwise_not": (lambda m, a: m.bitwise_not(a), [INT], False),
    "torch.lcm": (lambda m, a, b: m.lcm(a, b), [INT, INT2], False),
    "torch.lcm_": (lambda m, a, b: m.lcm_(_clone(a), b), [INT, INT2], False),
    "torch.gcd_": (lambda m, a, b: m.gcd_(_clone(a), b), [INT, INT2], False),
    "torch.bmm": (lambda m, a, b: m.bmm(a, b), [B1, B2], True),
    "torch.mm": (lambda m, a, b: m.mm(a, b), [X, B2[0]], True),
    "torch.matmul": (lambda m, a, b: m.matmul(a, b), [B1, B2[0]], True),
    "torch.dot": (lambda m, a, b: m.dot(a, b), [V4, X[0]], True),
    "torch.broadcast_to": (lambda m, a: m.broadcast_to(a, (2, 3, 4)), [X], True),
    "torch.cholesky": (lambda m, a: m.cholesky((a + a.mT) / 2), [SPD], True),
    "torch.slogdet": (lambda m, a: m.slogdet(a)[1], [S], True),  # the sign: no gradient here, a zero one in torch
    "torch.chunk": (lambda m, a: m.chunk(a, 2, dim=1), [X], True),
    "torch.split": (lambda m, a: m.split(a, [1, 3], dim=1), [X], True),
    "torch.concat": (lambda m, a, b: m.concat([a, b], dim=0), [X, Y], True),
    "torch.concatenate": (lambda m, a, b: m.concatenate([a, b], 1), [X, Y], True),
    "torch.flip": (lambda m, a: m.flip(a, [0, 1]), [X], True),
    "torch.gather": (lambda m, a, i: m.gather(a, 1, i), [X, np.array([[0, 3], [2, 2], [1, 0]])], True),
    "torch.index_select": (lambda m, a, i: m.index_select(a, 1, i), [X, IDX], True),
    "torch.index_put_": (lambda m, a, i, v: m.index_put_(_clone(a), (i,), v), [X, IDX, V4], False),
    "torch.masked_fill": (lambda m, a, k: m.masked_fill(a, k, -2.0), [X, MASK], True),
    "torch.masked_scatter": (lambda m, a, k, s: m.masked_scatter(a, k, s), [X, MASK, randn(12, seed=9)], True),
    "torch.scatter_add": (lambda m, a, i, s: m.scatter_add(a, 0, i, s),
                          [X, np.array([[0, 2, 1, 0], [2, 2, 0, 1]]), randn(2, 4, seed=10)], True),
    "torch.group_norm": (lambda m, a, w, b: m.group_norm(a, 2, w, b, 1e-5), [B1.reshape(2, 4, 3), V4, V4[::-1].copy()],
                         True),
    "torch.layer_norm": (lambda m, a, w, b: m.layer_norm(a, (4,), w, b, 1e-5), [X, V4, V4[::-1].copy()], True),
    "torch.rms_norm": (lambda m, a, w: m.rms_norm(a, [4], w, 1e-6), [X, V4], True),
    "torch.logsumexp": (lambda m, a: m.logsumexp(a, dim=1), [X], True),
    "torch.max_pool1d": (lambda m, a: m.max_pool1d(a, 2), [B1], True),
    "torch.max_pool2d": (lambda m, a: m.max_pool2d(a, 2), [randn(1, 2, 4, 4, seed=11)], True),
    "torch.max_pool3d": (lambda m, a: m.max_pool3d(a, 2), [randn(1, 2, 4, 2, 4, seed=12)], True),
    "torch.narrow": (lambda m, a: m.narrow(a, 1, 1, 2), [X], True),
    "torch.permute": (lambda m, a: m.permute(a, (2, 0, 1)), [B1], True),
    "torch.repeat_interleave": (lambda m, a: m.repeat_interleave(a, 2, dim=0), [X], True),
    "torch.reshape": (lambda m, a: m.reshape(a, (4, 3)), [X], True),
    "torch.roll": (lambda m, a: m.roll(a, (1, -1), (0, 1)), [X], True),
    "torch.rrelu": (lambda m, a: m.rrelu(a, 0.1, 0.3, False), [X], True),
    "torch.threshold": (lambda m, a: m.threshold(a, 0.1, -1.0), [X], True),
    "torch.swapaxes": (lambda m, a: m.swapaxes(a, 0, 2), [B1], True),
    "torch.tile": (lambda m, a: m.tile(a, (2, 1)), [X], True),
    "torch.transpose": (lambda m, a: m.transpose(a, 0, 1), [X], True),
    "torch.unflatten": (lambda m, a: m.unflatten(a, 1, (2, 2)), [X], True),
    "torch.unsqueeze": (lambda m, a: m.unsqueeze(a, 1), [X], True),
    "torch.numel": (lambda m, a: m.full((1,), float(m.numel(a)), dtype=m.float64), [B1], False),
    # Tensor methods
    "addbmm": (lambda m, a, b, c: a.addbmm(b, c, beta=0.5, alpha=2.0), [randn(3, 5, seed=13), B1, B2], True),
    "addbmm_": (lambda m, a, b, c: a.clone().addbmm_(b, c), [randn(3, 5, seed=13), B1, B2], False),
    "baddbmm": (lambda m, a, b, c: a.baddbmm(b, c, alpha=0.5), [randn(2, 3, 5, seed=14), B1, B2], True),
    "baddbmm_": (lambda m, a, b, c: a.clone().baddbmm_(b, c), [randn(2, 3, 5, seed=14), B1, B2], False),
    "addcmul": (lambda m, a, b, c: a.addcmul(b, c, value=0.3), [X, Y, POS], True),
    "addcmul_": (lambda m, a, b, c: a.clone().addcmul_(b, c), [X, Y, POS], False),
    "addcdiv_": (lambda m, a, b, c: a.clone().addcdiv_(b, c, value=2.0), [X, Y, POS], False),
    "addmm_": (lambda m, a, b, c: a.clone().addmm_(b, c), [B3, X, B2[0]], False),
    "addmv": (lambda m, a, b, c: a.addmv(b, c, beta=2.0), [V3, X, V4], True),
    "addmv_": (lambda m, a, b, c: a.clone().addmv_(b, c), [V3, X, V4], False),
    "addr": (lambda m, a, b, c: a.addr(b, c), [X, V3, V4], True),
    "addr_": (lambda m, a, b, c: a.clone().addr_(b, c), [X, V3, V4], False),
    "bitwise_and_": (lambda m, a, b: a.clone().bitwise_and_(b), [INT, INT2], False),
    "bitwise_or": (lambda m, a, b: a.bitwise_or(b), [INT, INT2], False),
    "bitwise_or_": (lambda m, a, b: a.clone().bitwise_or_(b), [INT, INT2], False),
    "bitwise_xor": (lambda m, a, b: a.bitwise_xor(b), [INT, INT2], False),
    "bitwise_xor_": (lambda m, a, b: a.clone().bitwise_xor_(b), [INT, INT2], False),
    "bitwise_not": (lambda m, a: a.bitwise_not(), [INT], False),
    "bitwise_not_": (lambda m, a: a.clone().bitwise_not_(), [INT], False),
    "gcd": (lambda m, a, b: a.gcd(b), [INT, INT2], False),
    "gcd_": (lambda m, a, b: a.clone().gcd_(b), [INT, INT2], False),
    "lcm_": (lambda m, a, b: a.clone().lcm_(b), [INT, INT2], False),
    "bincount": (lambda m, a: a.bincount(minlength=5), [np.array([0, 3, 3, 1, 0, 3])], False),
    "cholesky": (lambda m, a: ((a + a.mT) / 2).cholesky(), [SPD], True),
    "cholesky_inverse": (lambda m, a: a.tril().cholesky_inverse(), [S], True),
    "cholesky_solve": (lambda m, b, a: b.cholesky_solve(a.tril()), [B3[:, :2], S], True),
    "triangular_solve": (lambda m, b, a: b.triangular_solve(a.triu()), [B3[:, :2], S], True),
    "det": (lambda m, a: a.det(), [S], True),
    "logdet": (lambda m, a: a.logdet(), [SPD], True),
    "slogdet": (lambda m, a: a.slogdet()[1], [S], True),
    "inverse": (lambda m, a: a.inverse(), [S], True),
    "matrix_exp": (lambda m, a: a.matrix_exp(), [S / 4], True),
    "matrix_power": (lambda m, a: a.matrix_power(3), [S / 3], True),
    "cummax": (lambda m, a: a.cummax(1), [X], True),
    "cumprod_": (lambda m, a: a.clone().cumprod_(1), [X], False),
    "cumsum_": (lambda m, a: a.clone().cumsum_(0), [X], False),
    "dsplit": (lambda m, a: a.dsplit([1, 3]), [B1], True),
    "hsplit": (lambda m, a: a.hsplit(2), [X], True),
    "vsplit": (lambda m, a: a.vsplit([1]), [X], True),
    "split_with_sizes": (lambda m, a: a.split_with_sizes([3, 1], dim=1), [X], True),
    "fill_": (lambda m, a: a.clone().fill_(0.25), [X], False),
    "index_add_": (lambda m, a, i, s: a.clone().index_add_(1, i, s, alpha=2.0), [X, IDX, randn(3, 2, seed=15)], False),
    "index_copy_": (lambda m, a, i, s: a.clone().index_copy_(1, i, s), [X, IDX, randn(3, 2, seed=15)], False),
    "index_fill": (lambda m, a, i: a.index_fill(1, i, -1.0), [X, IDX], True),
    "index_fill_": (lambda m, a, i: a.clone().index_fill_(1, i, -1.0), [X, IDX], False),
    "index_put_": (lambda m, a, i, v: a.clone().index_put_((i,), v, accumulate=True), [X, IDX, V4], False),
    "masked_fill_": (lambda m, a, k: a.clone().masked_fill_(k, 3.0), [X, MASK], False),
    "masked_scatter_": (lambda m, a, k, s: a.clone().masked_scatter_(k, s), [X, MASK, randn(12, seed=9)], False),
    "put_": (lambda m, a, i, s: a.clone().put_(i, s), [X, np.array([0, 11, 5]), V3], False),
    "scatter_": (lambda m, a, i, s: a.clone().scatter_(0, i, s), [X, np.array([[0, 2, 1, 0]]), randn(1, 4, seed=16)],
                 False),
    "scatter_add_": (lambda m, a, i, s: a.clone().scatter_add_(0, i, s),
                     [X, np.array([[0, 2, 1, 0], [0, 0, 2, 2]]), randn(2, 4, seed=16)], False),
    "scatter_reduce": (lambda m, a, i, s: a.scatter_reduce(0, i, s, "amax", include_self=False),
                       [X, np.array([[0, 2, 1, 0], [1, 2, 2, 0]]), randn(2, 4, seed=17)], True),
    "scatter_reduce_": (lambda m, a, i, s: a.clone().scatter_reduce_(0, i, s, "sum"),
                        [X, np.array([[0, 2, 1, 0], [1, 2, 2, 0]]), randn(2, 4, seed=17)], False),
    "lerp_": (lambda m, a, b: a.clone().lerp_(b, 0.3), [X, Y], False),
    "renorm_": (lambda m, a: a.clone().renorm_(2, 0, 1.0), [X], False),
    "moveaxis": (lambda m, a: a.moveaxis(0, 2), [B1], True),
    "swapaxes": (lambda m, a: a.swapaxes(0, 1), [X], True),
    "mvlgamma": (lambda m, a: a.mvlgamma(2), [POS + 1], True),
    "mvlgamma_": (lambda m, a: a.clone().mvlgamma_(2), [POS + 1], False),
    "polygamma": (lambda m, a: a.polygamma(1), [POS], True),
    "polygamma_": (lambda m, a: a.clone().polygamma_(2), [POS], False),
    "new_full": (lambda m, a: a.new_full((2, 2), 3.5), [X], False),
    "new_ones": (lambda m, a: a.new_ones((2, 3)), [X], False),
    "new_zeros": (lambda m, a: a.new_zeros(4), [X], False),
    "select": (lambda m, a: a.select(1, 2), [X], True),
    "select_scatter": (lambda m, a, s: a.select_scatter(s, 0, 1), [X, V4], True),
    "take": (lambda m, a, i: a.take(i), [X, np.array([[0, 11], [5, 5]])], True),
    "take_along_dim": (lambda m, a, i: a.take_along_dim(i, 1), [X, np.array([[0, 3], [2, 2], [1, 0]])], True),
    "vdot": (lambda m, a, b: a.vdot(b), [V4, X[1]], True),
    "where": (lambda m, a, k, b: a.where(k, b), [X, MASK, Y], True),
    "bfloat16": (lambda m, a: a.bfloat16(), [X], False),
}
TOLERANCE = {"bfloat16": dict(rtol=1e-2, atol=1e-2), "kaiser_window": dict(rtol=1e-7, atol=1e-12)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    fn, inputs, grad = CASES[name]
    dtypes = (np.float64, np.float32) if any(np.asarray(a).dtype.kind == "f" for a in inputs) else (np.float64,)
    ours = DROP_IN if name.startswith("torch.") else na
    check(lambda *a: fn(ours, *a), inputs, torch_fn=lambda *a: fn(torch, *a), grad=grad, dtypes=dtypes,
          **TOLERANCE.get(name.removeprefix("torch."), {}))


DTYPES = ["bfloat16", "bool", "cdouble", "cfloat", "complex128", "complex64", "double", "float", "float16", "float32",
          "float64", "half", "int", "int8", "int16", "int32", "int64", "long", "short", "uint8", "uint16", "uint32",
          "uint64"]


@pytest.mark.parametrize("name", DTYPES)
def test_dtypes_convert_as_torchs(name):
    """``x.to(m.<dtype>)``: the same dtype and the same values."""
    values = np.array([0.0, 1.0, 2.5, 7.0])
    ours = na.tensor(values).to(getattr(na, name))
    ref = torch.tensor(values).to(attribute(torch, name))
    if "complex" in str(ref.dtype) or "cfloat" in name or "cdouble" in name:
        compare([str(ours.dtype), ours.numpy()], [str(ref.dtype).removeprefix("torch."), ref.numpy()])
    else:
        compare(ours, ref)


@pytest.mark.parametrize("name", ["e", "pi", "inf", "nan", "newaxis"])
def test_constants(name):
    compare(getattr(na, name), attribute(torch, name))


@pytest.mark.parametrize("name", ["Tensor", "FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ShortTensor",
                                  "CharTensor", "ByteTensor", "BoolTensor"])
def test_legacy_constructors_from_data(name):
    data = [[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]]
    compare(getattr(na, name)(data), attribute(torch, name)(data))


def test_default_dtype_state_queries_and_promotion():
    m = DROP_IN
    ours = [str(m.get_default_dtype()), m.is_grad_enabled(), m.is_anomaly_enabled(), m.is_autocast_enabled("cpu"),
            str(m.get_autocast_dtype("cpu")), str(m.promote_types(m.int32, m.float16)),
            m.is_floating_point(na.tensor(X)), m.is_tensor(na.tensor(X)), m.is_tensor(X)]
    tx = torch.tensor(X)
    with reference():
        ref = [str(torch.get_default_dtype()), torch.is_grad_enabled(), torch.is_anomaly_enabled(),
               torch.is_autocast_enabled("cpu"), str(torch.get_autocast_dtype("cpu")),
               str(torch.promote_types(torch.int32, torch.float16)), torch.is_floating_point(tx), torch.is_tensor(tx),
               torch.is_tensor(X)]
    compare(ours, [r.removeprefix("torch.") if isinstance(r, str) else r for r in ref])


def test_grad_mode_context_managers():
    x_ours, x_ref = na.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    with na.no_grad(), na.enable_grad():
        ours = [(x_ours * 2).requires_grad]
    with na.inference_mode():
        ours.append((x_ours * 2).requires_grad)
    with reference():
        with torch.no_grad(), torch.enable_grad():
            ref = [(x_ref * 2).requires_grad]
        with torch.inference_mode():
            ref.append((x_ref * 2).requires_grad)
    compare(ours, ref)


def test_autocast_runs_a_matmul_in_bfloat16_as_torchs():
    a, b = randn(4, 8, seed=18), randn(8, 3, seed=19)
    with na.autocast("cpu", dtype=na.bfloat16):
        ours = na.tensor(a, dtype=na.float32) @ na.tensor(b, dtype=na.float32)
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    with reference():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref = torch.matmul(ta, tb)
    compare(ours, ref, rtol=1.6e-2, atol=1e-2)


def test_device_and_number_types():
    ours = [str(na.device("cpu")), float(na.finfo(na.float32).eps), int(na.iinfo(na.int16).max)]
    ref = [str(attribute(torch, "device")("cpu")), attribute(torch, "finfo")(torch.float32).eps,
           attribute(torch, "iinfo")(torch.int16).max]
    compare(ours, ref)


def test_thread_count_and_matmul_precision_setters_round_trip_as_torchs():
    before_ours, before_ref = na.get_num_threads(), torch.get_num_threads()
    try:
        na.set_num_threads(1)
        na.set_float32_matmul_precision("high")
        ours = [na.get_num_threads(), na.get_float32_matmul_precision()]
        with reference():
            torch.set_num_threads(1)
            torch.set_float32_matmul_precision("high")
            ref = [torch.get_num_threads(), torch.get_float32_matmul_precision()]
        compare(ours, ref)
    finally:
        na.set_num_threads(before_ours)
        torch.set_num_threads(before_ref)
        na.set_float32_matmul_precision("highest")
        torch.set_float32_matmul_precision("highest")
