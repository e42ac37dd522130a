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
