"""``python -m neural_arch.backend.kernels``: compile / load every kernel once (warm numba's cache)."""

from neural_arch.backend import kernels

print(f"numba kernels ready in {kernels.warm():.2f} s" if kernels.active() else "numba kernels off")
