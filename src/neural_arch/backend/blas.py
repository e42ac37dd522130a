"""Intel MKL's GEMMs, when installed (``pip install neural-arch[mkl]``), for the products we run ourselves.

NumPy's wheels bundle OpenBLAS; on Intel cores MKL's single-threaded ``sgemm`` is faster at the shapes
of our models, and it has GEMMs that read bfloat16 or float16 operands and accumulate in float32
(``cblas_gemm_bf16bf16f32``, ``cblas_gemm_f16f16f32``), where OpenBLAS makes us widen whole operands
first. Figures: BENCHMARKS.md, "MKL's GEMMs".

This module only finds and loads the library; ``threads.mkl()`` decides whether it is used
(``policy.blas_lib``) and ``backend/cblas.py`` calls its functions by address from compiled code.
Loading happens at the first product, never at import. Before any other MKL call it is told to run
sequentially (our own threads split the products). We call its explicit 64-bit-integer symbols
(``cblas_sgemm_64``: the signature of the ``cblas_?gemm64_`` symbols of NumPy's OpenBLAS that the polling
helpers already call, ``backend/spin.py``) and leave its interface layer as it is.

NOTE: not ``MKL_Set_Interface_Layer(ILP64)``: that setting is process-wide, and torch's products in the
same process (the test suite's references) then read garbage: ``addmm`` in float64 gave wrong values
after it. NumPy itself never sees this library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys

import numpy as np

_THREADING_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL (mkl_service.h)

# what each address in MKL.gemm multiplies: the operands' dtype name ("bfloat16": ml_dtypes' dtype)
_SYMBOLS = {"float32": "cblas_sgemm_64", "float64": "cblas_dgemm_64",
            "bfloat16": "cblas_gemm_bf16bf16f32_64", "float16": "cblas_gemm_f16f16f32_64"}


def mkl_path() -> str | None:
    """Where ``libmkl_rt`` is: ``NEURAL_ARCH_MKL_PATH`` (the file), else the ``lib/`` of this Python's
    prefix (where the ``mkl`` wheel puts it, in a virtual environment too), else the loader's search."""
    given = os.environ.get("NEURAL_ARCH_MKL_PATH", "").strip()
    if given:
        return given
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found = sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
        if found:
            return found[0]
    return ctypes.util.find_library("mkl_rt")


class MKL:
    """MKL's runtime library, set to run sequentially; ``gemm`` maps an operand dtype name (``_SYMBOLS``)
    to the address of its CBLAS GEMM with 64-bit integers."""

    def __init__(self, path: str):
        self.path = path
        dll = ctypes.CDLL(path)
        dll.MKL_Set_Threading_Layer.argtypes, dll.MKL_Set_Threading_Layer.restype = (ctypes.c_int,), ctypes.c_int
        # NOTE: before any other MKL call (it fixes the threading layer for the whole process)
        if dll.MKL_Set_Threading_Layer(_THREADING_SEQUENTIAL) != _THREADING_SEQUENTIAL:
            raise OSError(f"{path}: MKL was already set to another threading layer in this process")
        self.gemm = {}
        for name, symbol in _SYMBOLS.items():
            if hasattr(dll, symbol):
                self.gemm[name] = ctypes.cast(getattr(dll, symbol), ctypes.c_void_p).value
        text = ctypes.create_string_buffer(256)
        dll.MKL_Get_Version_String(text, len(text))
        self.version = text.value.decode(errors="replace").strip()

    def address(self, dtype) -> int:
        """The GEMM taking operands of ``dtype`` (0 when this MKL has none)."""
        return self.gemm.get(np.dtype(dtype).name, 0)


_loaded: MKL | None | bool = False  # False: not looked for yet; None: not installed or not loadable
load_error = ""  # why MKL could not be loaded, for `neural-arch info` and the error a forced choice raises


def load_mkl() -> MKL | None:
    """MKL, loaded once on first use, or None when it is not installed (or not loadable)."""
    global _loaded, load_error
    if _loaded is False:
        path = mkl_path()
        try:
            _loaded = MKL(path) if path else None
            load_error = "" if path else "libmkl_rt not found"
        except (OSError, AttributeError) as exc:  # not a library, or not MKL's runtime
            _loaded, load_error = None, str(exc)
    return _loaded
