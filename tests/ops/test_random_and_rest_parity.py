"""The sampling functions and methods, uninitialised allocations and the remaining Tensor plumbing, against
torch's. The generators differ, so a draw is compared where both frameworks must agree: draws of a
degenerate distribution (p = 0 or 1, a zero spread, a one-value range) exactly; otherwise the shape, the
dtype and whether every draw lies in the distribution's support. ``empty`` compares shape and dtype only."""

import numpy as np
import pytest
import torch
from parity import attribute, compare, reference

import neural_arch as na
from neural_arch.compat import facade

DROP_IN = facade.build("torch")
P = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
ONE_HOT = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


def _summary(t, low=None, high=None):
    """Shape, dtype and (given a support [low, high)) whether every value lies in it."""
    values = t.numpy() if not hasattr(t, "detach") else t.detach().numpy()
    out = [list(t.shape), str(t.dtype).removeprefix("torch.")]
    if low is not None:
        out.append(bool(((values >= low) & (values < high)).all()))
    return out


# name: fn(m, x) -> the values to compare; m is torch or ours as drop-in mode resolves it, x a (2, 3) float tensor
CASES = {
    "torch.bernoulli": lambda m, x: m.bernoulli(m.tensor(P)),
    "torch.multinomial": lambda m, x: m.multinomial(m.tensor(ONE_HOT), 3, replacement=True),
    "torch.normal": lambda m, x: m.normal(m.tensor(P), m.zeros_like(m.tensor(P))),
    "torch.poisson": lambda m, x: m.poisson(m.zeros_like(x)),
    "torch.randint": lambda m, x: m.randint(4, 5, (2, 3)),
    "torch.randint_like": lambda m, x: m.randint_like(x, 2, 3),
    "torch.randperm": lambda m, x: m.sort(m.randperm(6)).values,
    "torch.rand": lambda m, x: _summary(m.rand(2, 3), 0.0, 1.0),
    "torch.rand_like": lambda m, x: _summary(m.rand_like(x), 0.0, 1.0),
    "torch.randn": lambda m, x: _summary(m.randn(3, 2), -np.inf, np.inf),
    "torch.randn_like": lambda m, x: _summary(m.randn_like(x), -np.inf, np.inf),
    "torch.empty": lambda m, x: _summary(m.empty(2, 5, dtype=m.float64)),
    "torch.empty_like": lambda m, x: _summary(m.empty_like(x)),
    "bernoulli": lambda m, x: m.tensor(P).bernoulli(),
    "bernoulli_": lambda m, x: x.clone().bernoulli_(1.0),
    "multinomial": lambda m, x: m.tensor(ONE_HOT).multinomial(2, replacement=True),
    "normal_": lambda m, x: x.clone().normal_(1.5, 0.0),
    "uniform_": lambda m, x: _summary(x.clone().uniform_(-2.0, -1.0), -2.0, -1.0),
    "random_": lambda m, x: x.clone().random_(3, 4),
    "geometric_": lambda m, x: _summary(x.clone().geometric_(0.5), 1.0, np.inf),
    "exponential_": lambda m, x: _summary(x.clone().exponential_(2.0), 0.0, np.inf),
    "cauchy_": lambda m, x: _summary(x.clone().cauchy_(0.0, 1.0), -np.inf, np.inf),
    "log_normal_": lambda m, x: _summary(x.clone().log_normal_(0.0, 1.0), 0.0, np.inf),
    "new_empty": lambda m, x: _summary(x.new_empty((4, 1))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_draws_agree_where_both_must(name):
    fn = CASES[name]
    values = np.random.default_rng(0).standard_normal((2, 3))
    ours = fn(DROP_IN if name.startswith("torch.") else na, na.tensor(values))
    x = torch.tensor(values)
    with reference():
        ref = fn(torch, x)
    compare(ours, ref)


def test_seeding_repeats_the_draws_as_torchs_does():
    def repeat(m):
        m.manual_seed(3)
        first = m.rand(4).tolist()
        m.manual_seed(3)
        again = m.rand(4).tolist()
        return [first == again, m.initial_seed(), isinstance(m.seed(), int)]

    ours = repeat(DROP_IN)
    with reference():
        ref = repeat(torch)
    compare(ours, ref)


def test_addmv_in_place_function():
    a, m_, v = np.arange(3.0), np.arange(12.0).reshape(3, 4), np.linspace(-1, 1, 4)
    ours = DROP_IN.addmv_(na.tensor(a.copy()), na.tensor(m_), na.tensor(v), beta=0.5)
    with reference():
        ref = torch.addmv_(torch.tensor(a.copy()), torch.tensor(m_), torch.tensor(v), beta=0.5)
    compare(ours, ref, rtol=1e-15)


def test_scalar_and_array_exits_and_type():
    values = np.array([[1.5, -2.0, 0.0]])
    ours, x = na.tensor(values), torch.tensor(values)
    with reference():
        ref = [x[0, 0].item(), x.numpy(), torch.tensor([3.0]).is_nonzero(), x.type(torch.float32), x.data_ptr() != 0]
    # (x.type() with no argument differs: torch says "torch.DoubleTensor", ours "float64"; NOTES.md)
    compare([ours[0, 0].item(), ours.numpy(), na.tensor([3.0]).is_nonzero(), ours.type(na.float32),
             ours.data_ptr() != 0], ref)


def test_retain_grad_keeps_an_intermediate_gradient():
    ours_x, ref_x = na.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    ours_h = ours_x * 3
    ours_h.retain_grad()
    (ours_h * ours_h).sum().backward()
    with reference():
        ref_h = ref_x * 3
        ref_h.retain_grad()
        (ref_h * ref_h).sum().backward()
    compare(ours_h.grad, ref_h.grad)


def test_imag_of_a_complex_tensor():
    z = np.array([1 + 2j, -0.5 - 1j])
    compare(na.tensor(z).imag, attribute(torch.tensor(z), "imag"))


def test_size_and_dtype_classes():
    shape = DROP_IN.Size([2, 3])
    ref = attribute(torch, "Size")([2, 3])
    compare([list(shape), shape.numel()], [list(ref), ref.numel()])
    compare(isinstance(DROP_IN.float32, DROP_IN.dtype), isinstance(torch.float32, attribute(torch, "dtype")))


def test_gumbel_softmax_samples_have_torchs_form():
    """The noise differs; both must give rows on the simplex (soft) or one-hot rows (hard), of the logits' shape."""
    logits = np.random.default_rng(1).standard_normal((4, 5))

    def form(f, t, hard):
        y = f.gumbel_softmax(t, tau=0.5, hard=hard)
        values = y.detach().numpy()
        return [list(y.shape), np.allclose(values.sum(-1), 1.0), bool(((values >= 0) & (values <= 1)).all()),
                bool(np.isin(values, (0.0, 1.0)).all())]

    import neural_arch.nn.functional as F

    ours = [form(F, na.tensor(logits), hard) for hard in (False, True)]
    x = torch.tensor(logits)
    with reference():
        ref = [form(torch.nn.functional, x, hard) for hard in (False, True)]
    compare(ours, ref)


def test_fft_results_are_the_namespaces_tensor_class():
    import neural_arch.fft as na_fft

    x = np.arange(4.0)
    compare(isinstance(na_fft.rfft(na.tensor(x)), na_fft.Tensor),
            isinstance(torch.fft.rfft(torch.tensor(x)), attribute(torch.fft, "Tensor")))


def test_save_and_load_give_back_what_torchs_give_back(tmp_path):
    """Ours writes safetensors, torch a zip of pickles; what each loads back from its own file is compared."""
    state = {"weight": np.arange(6.0).reshape(2, 3), "bias": np.array([0.5, -1.0])}
    DROP_IN.save({k: na.tensor(v) for k, v in state.items()}, tmp_path / "ours.pt")
    ours = DROP_IN.load(tmp_path / "ours.pt")
    tensors = {k: torch.tensor(v) for k, v in state.items()}
    with reference():
        torch.save(tensors, tmp_path / "torch.pt")
        ref = torch.load(tmp_path / "torch.pt")
    compare(ours, ref)


def test_compile_gives_the_eager_values_as_torchs():
    def f(m, x):
        return m.tanh(x) * 2 + x.sum()

    x = np.linspace(-1, 1, 6).reshape(2, 3)
    ours = DROP_IN.compile(lambda t: f(DROP_IN, t))(na.tensor(x))
    tx = torch.tensor(x)
    with reference():
        ref = torch.compile(lambda t: f(torch, t), backend="eager")(tx)  # eager backend: no C++ compiler needed
    compare(ours, ref, rtol=1e-15, atol=1e-15)
