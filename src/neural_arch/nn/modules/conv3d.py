"""``Conv3d``, ``ConvTranspose1d`` and ``ConvTranspose3d``, on the convolution base of ``conv.py`` (torch's
shapes and init)."""

from __future__ import annotations

from neural_arch.nn import functional as F
from neural_arch.nn.modules.conv import _Conv, _ConvTranspose

__all__ = ["Conv3d", "ConvTranspose1d", "ConvTranspose3d"]


class Conv3d(_Conv):
    """3-D convolution. Input ``(N, C_in, D, H, W)`` (or unbatched) -> ``(N, C_out, D_out, H_out, W_out)``."""

    _nd, _conv = 3, staticmethod(F.conv3d)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution: ``L_out = (L - 1) s - 2 p + d (k - 1) + output_padding + 1``."""

    _nd, _conv = 1, staticmethod(F.conv_transpose1d)


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-D convolution: per axis ``out = (n - 1) s - 2 p + d (k - 1) + output_padding + 1``."""

    _nd, _conv = 3, staticmethod(F.conv_transpose3d)
