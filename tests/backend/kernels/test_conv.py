"""The im2col / col2im kernels against the NumPy twins, on one thread and split by channels."""

import numpy as np
import pytest

from neural_arch.backend.kernels import conv

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


@pytest.mark.parametrize("geometry", [
    # (N, C, H, W, kh, kw, stride, top/left padding, dilation, bottom/right padding)
    (2, 3, 9, 7, 3, 2, (2, 1), (1, 2), (1, 2), (1, 2)),
    (2, 3, 5, 5, 3, 3, (3, 2), (0, 1), (2, 1), (0, 1)),
    (1, 2, 4, 4, 5, 5, (1, 1), (3, 3), (1, 1), (3, 3)),  # windows made only of padding
    (2, 4, 6, 6, 2, 2, (1, 1), (0, 0), (1, 1), (1, 1)),  # asymmetric, as padding="same" for an even kernel
])
def test_im2col_copy_and_col2im_sum_match_the_numpy_twins(geometry, monkeypatch):
    from neural_arch.backend import threads
    from neural_arch.backend.kernels.conv import _col2im as col2im
    from neural_arch.backend.kernels.conv import crop_hw, im2col, pad_hw

    n, c, h, w, kh, kw, stride, (pt, pl), dil, (pb, pr) = geometry
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    xp = pad_hw(x, (pt, pb, pl, pr))
    ho = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    ref_cols = im2col(xp, (kh, kw), stride, dil, (ho, wo), batch_last=True)
    g = rng.standard_normal(ref_cols.shape).astype(f32)
    ref_gx = crop_hw(col2im(g.transpose(0, 3, 1, 2, 4, 5), xp.shape[2:], stride, dil).transpose(1, 0, 2, 3),
                     (pt, pb, pl, pr), (h, w))
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    for threshold in (1 << 40, 0):  # one thread, then split by channels (c0 offsets)
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        cols = np.full((c, kh, kw, n, ho, wo), np.nan, f32)
        conv.im2col_copy(cols, x, 0, *stride, pt, pl, *dil)
        np.testing.assert_array_equal(cols, ref_cols)
        gx = np.full_like(x, np.nan)
        conv.col2im_sum(g, gx, 0, *stride, pt, pl, *dil)
        np.testing.assert_allclose(gx, ref_gx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geometry", [
    # (N, C, H, W, kh, kw, top/left padding, dilation, bottom/right padding): unit strides, Wo = W
    (2, 3, 7, 6, 3, 3, (1, 1), (1, 1), (1, 1)),  # the common 3x3, padding 1
    (2, 3, 7, 9, 3, 5, (0, 2), (1, 1), (1, 2)),  # Ho != H, a wider kernel
    (1, 2, 6, 6, 3, 3, (2, 2), (2, 2), (2, 2)),  # dilated
    (2, 4, 5, 5, 2, 2, (0, 0), (1, 1), (1, 1)),  # asymmetric, as padding="same" for an even kernel
    (1, 2, 3, 3, 7, 7, (3, 3), (1, 1), (3, 3)),  # taps that fall wholly on padding
    (2, 3, 4, 4, 1, 1, (0, 0), (1, 1), (0, 0)),  # 1x1
])
def test_flat_im2col_and_col2im_match_the_numpy_twins(geometry, monkeypatch):
    """im2col_copy_flat / col2im_sum_flat (unit strides, Wo = W): one contiguous run per tap, the
    entries that wrap across a row edge zeroed; col2im_sum_flat zeroes them in its scratch input."""
    from neural_arch.backend import threads
    from neural_arch.backend.kernels.conv import _col2im as col2im
    from neural_arch.backend.kernels.conv import crop_hw, im2col, pad_hw

    n, c, h, w, kh, kw, (pt, pl), dil, (pb, pr) = geometry
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    xp = pad_hw(x, (pt, pb, pl, pr))
    ho = xp.shape[2] - dil[0] * (kh - 1)
    assert xp.shape[3] - dil[1] * (kw - 1) == w
    ref_cols = im2col(xp, (kh, kw), (1, 1), dil, (ho, w), batch_last=True)
    g = rng.standard_normal(ref_cols.shape).astype(f32)
    ref_gx = crop_hw(col2im(g.transpose(0, 3, 1, 2, 4, 5), xp.shape[2:], (1, 1), dil).transpose(1, 0, 2, 3),
                     (pt, pb, pl, pr), (h, w))
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    for threshold in (1 << 40, 0):  # one thread, then split by channels (c0 offsets)
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        cols = np.full((c, kh, kw, n, ho * w), np.nan, f32)
        conv.im2col_copy_flat(cols, x.reshape(n, c, -1), 0, h, w, pt, pl, *dil)
        np.testing.assert_array_equal(cols.reshape(ref_cols.shape), ref_cols)
        gx = np.full((n, c, h * w), np.nan, f32)
        conv.col2im_sum_flat(g.reshape(cols.shape).copy(), gx, 0, h, w, pt, pl, *dil)
        np.testing.assert_allclose(gx.reshape(x.shape), ref_gx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geometry", [
    # (N, C, H, W, kh, kw, (top, bottom, left, right) padding): stride 2
    (2, 3, 13, 12, 7, 7, (3, 3, 3, 3)),  # ResNet's stem in small
    (2, 2, 9, 8, 5, 5, (1, 1, 2, 2)),  # odd padded height
    (1, 2, 6, 7, 5, 6, (0, 1, 2, 0)),  # asymmetric padding, an even kernel
])
def test_stride_2_im2col_from_phase_planes_matches_the_numpy_twin(geometry):
    from neural_arch.backend.kernels.conv import _phases, im2col, pad_hw

    n, c, h, w, kh, kw, pads = geometry
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    xp = pad_hw(x, pads)
    ho, wo = (xp.shape[2] - kh) // 2 + 1, (xp.shape[3] - kw) // 2 + 1
    cols = np.full((c, kh, kw, n, ho, wo), np.nan, f32)
    conv.im2col_copy_phases(cols, _phases(x, pads), 0)
    np.testing.assert_array_equal(cols, im2col(xp, (kh, kw), (2, 2), (1, 1), (ho, wo), batch_last=True))


@pytest.mark.parametrize("geometry", [
    # (C, O, H, W, kh, kw, stride, padding (top, bottom, left, right), dilation)
    (5, 4, 2, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),  # ResNet's last stage: 2x2 images, 3x3, padding 1
    (3, 6, 1, 1, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),  # one pixel: only the centre tap
    (3, 2, 2, 3, 3, 3, (2, 1), (2, 1, 0, 2), (2, 1)),  # strides, dilation, asymmetric padding
    (2, 3, 2, 2, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1)),
])
def test_dense_expand_and_fold_match_the_numpy_twins(geometry, monkeypatch):
    """conv_dense: the expanded filter and its adjoint (dL/dW from dL/dWd), kernel against twin, on one
    thread and split by output channels; and the tap table against im2col's windows."""
    from neural_arch.backend import threads
    from neural_arch.backend.kernels import conv_dense
    from neural_arch.backend.kernels.conv import im2col, out_size, pad_hw

    c, o, h, w, kh, kw, stride, pads, dil = geometry
    ho, wo = out_size((1, c, h, w), (o, c, kh, kw), pads, stride, dil)
    taps = conv_dense.tap_table((h, w), (kh, kw), stride, pads, dil, (ho, wo))
    # the table says which input pixel each tap of each output pixel reads: im2col of the pixel numbers
    numbers = np.arange(1, h * w + 1, dtype=np.float64).reshape(1, 1, h, w)
    windows = im2col(pad_hw(numbers, pads), (kh, kw), stride, dil, (ho, wo))[0, 0].reshape(kh * kw, ho * wo)
    for q in range(ho * wo):
        for t in range(kh * kw):
            p = int(windows[t, q]) - 1
            assert p < 0 or taps[q, p] == t
        assert sum(int(windows[t, q]) > 0 for t in range(kh * kw)) == int((taps[q] >= 0).sum())
    weight = rng.standard_normal((o, c, kh * kw)).astype(f32)
    dense_grad = rng.standard_normal((o, ho * wo, h * w, c)).astype(f32)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    for threshold in (1 << 40, 0):  # one thread, then split by output channels
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        np.testing.assert_array_equal(conv_dense.expand(weight, taps), conv_dense._expand(weight, taps))
        np.testing.assert_allclose(conv_dense.fold(dense_grad, taps, kh * kw),
                                   conv_dense._fold(dense_grad, taps, kh * kw), rtol=1e-6, atol=1e-6)
