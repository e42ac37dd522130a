"""neural_arch.fft and the complex ops vs torch: values and gradients (float64/float32) and gradcheck.

The shared parity helper works on real tensors, so complex inputs are built from two real ones with
``complex(re, im)`` and complex outputs compared through ``view_as_real``: the gradient checked is then
that of the whole chain, the complex ops' conventions included."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na

RE, IM = randn(3, 8, seed=1), randn(3, 8, seed=2)
RE2, IM2 = randn(2, 4, 6, seed=3), randn(2, 4, 6, seed=4)


def c(m, a, b):
    return m.complex(a, b)


def vr(m, z):
    return m.view_as_real(z.resolve_conj())  # torch's conj is lazy; ours is a copy (resolve_conj a no-op)


CASES = [
    ("fft", lambda m, a, b: vr(m, m.fft.fft(c(m, a, b))), [RE, IM]),
    ("fft_real_input", lambda m, a: vr(m, m.fft.fft(a, dim=0)), [RE]),
    ("fft_pad_ortho", lambda m, a, b: vr(m, m.fft.fft(c(m, a, b), n=11, norm="ortho")), [RE, IM]),
    ("fft_crop_forward", lambda m, a, b: vr(m, m.fft.fft(c(m, a, b), n=5, norm="forward")), [RE, IM]),
    ("ifft", lambda m, a, b: vr(m, m.fft.ifft(c(m, a, b), dim=0)), [RE, IM]),
    ("ifft_pad_forward", lambda m, a, b: vr(m, m.fft.ifft(c(m, a, b), n=10, norm="forward")), [RE, IM]),
    ("fft2", lambda m, a, b: vr(m, m.fft.fft2(c(m, a, b))), [RE2, IM2]),
    ("ifft2_s", lambda m, a, b: vr(m, m.fft.ifft2(c(m, a, b), s=(3, 7), norm="ortho")), [RE2, IM2]),
    ("fftn", lambda m, a, b: vr(m, m.fft.fftn(c(m, a, b))), [RE2, IM2]),
    ("fftn_dims", lambda m, a, b: vr(m, m.fft.fftn(c(m, a, b), s=(5, 3), dim=(0, 2))), [RE2, IM2]),
    ("ifftn", lambda m, a, b: vr(m, m.fft.ifftn(c(m, a, b), norm="forward")), [RE2, IM2]),
    ("rfft", lambda m, a: vr(m, m.fft.rfft(a)), [RE]),
    ("rfft_odd_n", lambda m, a: vr(m, m.fft.rfft(a, n=7, norm="ortho")), [RE]),
    ("rfft_pad_dim0", lambda m, a: vr(m, m.fft.rfft(a, n=6, dim=0, norm="forward")), [RE]),
    ("irfft", lambda m, a, b: m.fft.irfft(c(m, a, b)), [RE[:, :5], IM[:, :5]]),
    ("irfft_odd_n", lambda m, a, b: m.fft.irfft(c(m, a, b), n=9, norm="ortho"), [RE[:, :5], IM[:, :5]]),
    ("irfft_crop", lambda m, a, b: m.fft.irfft(c(m, a, b), n=4, norm="forward"), [RE, IM]),
    ("irfft_of_rfft", lambda m, a: m.fft.irfft(m.fft.rfft(a) * m.fft.rfft(a), n=8), [RE]),
    ("rfft2", lambda m, a: vr(m, m.fft.rfft2(a)), [RE2]),
    ("irfft2", lambda m, a, b: m.fft.irfft2(c(m, a, b)), [RE2, IM2]),
    ("rfftn", lambda m, a: vr(m, m.fft.rfftn(a, s=(3, 5))), [RE2]),
    ("irfftn", lambda m, a, b: m.fft.irfftn(c(m, a, b), s=(4, 4, 7)), [RE2, IM2]),
    ("hfft", lambda m, a, b: m.fft.hfft(c(m, a, b)), [RE[:, :5], IM[:, :5]]),
    ("hfft_ortho", lambda m, a, b: m.fft.hfft(c(m, a, b), n=7, norm="ortho"), [RE[:, :5], IM[:, :5]]),
    ("ihfft", lambda m, a: vr(m, m.fft.ihfft(a)), [RE]),
    ("fftshift", lambda m, a: m.fft.fftshift(a), [RE]),
    ("ifftshift_dim", lambda m, a: m.fft.ifftshift(a, dim=1), [RE2]),
    # the complex ops
    ("real_imag", lambda m, a, b: (m.real(c(m, a, b) * c(m, b, a)), m.imag(c(m, a, b) * c(m, b, a))), [RE, IM]),
    ("abs_angle", lambda m, a, b: (m.abs(c(m, a, b)), m.angle(c(m, a, b))), [RE, IM]),
    ("conj", lambda m, a, b: vr(m, m.conj(c(m, a, b)) * c(m, a, a)), [RE, IM]),
    ("mul_div", lambda m, a, b: vr(m, c(m, a, b) * c(m, b, a) / c(m, a + 3, b)), [RE, IM]),
    ("add_sub_real", lambda m, a, b: vr(m, (c(m, a, b) - a) * 2.5 + b), [RE, IM]),
    ("polar", lambda m, a, b: vr(m, m.polar(a.abs(), b)), [RE, IM]),
    ("view_as_complex", lambda m, a: vr(m, m.view_as_complex(a) * m.view_as_complex(a)), [randn(3, 4, 2)]),
    ("matmul_complex", lambda m, a, b: vr(m, c(m, a, b) @ c(m, b, a).mT), [RE, IM]),
    ("matmul_real_by_complex", lambda m, a, b: (lambda z: vr(m, z @ b.T.to(z.dtype)))(m.fft.fft(a)), [RE, IM]),
    ("sum_of_complex", lambda m, a, b: vr(m, (c(m, a, b) * c(m, a, b)).sum(1)), [RE, IM]),
    ("properties", lambda m, a, b: (c(m, a, b).real * 2, c(m, a, b).imag, vr(m, c(m, a, b).mH)), [RE, IM]),
]


@pytest.mark.parametrize("name,fn,ins", CASES, ids=[c[0] for c in CASES])
def test_fft_and_complex(name, fn, ins):
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs), rtol=1e-9, atol=1e-10)
    out = fn(na, *[na.tensor(i) for i in ins])
    first = (lambda *xs: fn(na, *xs)[0]) if isinstance(out, tuple) else (lambda *xs: fn(na, *xs))
    gradcheck(first, ins)


def test_dtypes_freqs_and_errors():
    x32 = na.randn(8)
    assert na.fft.fft(x32).dtype == np.complex64 and na.fft.rfft(x32.double()).dtype == np.complex128
    assert na.fft.irfft(na.fft.rfft(x32)).dtype == np.float32
    assert na.fft.fft(na.arange(4)).dtype == np.complex64  # integers go through the default float dtype
    for n, d in ((8, 1.0), (7, 0.5)):
        np.testing.assert_allclose(na.fft.fftfreq(n, d).numpy(), torch.fft.fftfreq(n, d).numpy())
        np.testing.assert_allclose(na.fft.rfftfreq(n, d).numpy(), torch.fft.rfftfreq(n, d).numpy())
    z = na.fft.fft(na.tensor(RE))
    assert z.is_complex() and not na.tensor(RE).is_complex()
    with pytest.raises(ValueError, match="norm must be"):
        na.fft.fft(x32, norm="unitary")
    with pytest.raises(na.errors.DTypeError, match="rfft: expects a real input"):
        na.fft.rfft(z)
    with pytest.raises(na.errors.ShapeError, match="positive"):
        na.fft.fft(x32, n=0)
    with pytest.raises(na.errors.DTypeError, match="imag: expects a complex"):
        na.imag(x32)
    # a complex leaf can require grad; its gradient is torch's
    leaf = na.tensor(RE[0] + 1j * IM[0], requires_grad=True)
    (na.fft.fft(leaf).abs() ** 2).sum().backward()
    tleaf = torch.tensor(RE[0] + 1j * IM[0], requires_grad=True)
    (torch.fft.fft(tleaf).abs() ** 2).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), tleaf.grad.numpy(), rtol=1e-10)
