"""neural-arch: a deep learning framework on NumPy, readable end to end.

    import neural_arch as na
    x = na.randn(3, requires_grad=True)
    (x * x).sum().backward()
    x.grad                      # 2 x
"""

import importlib as _importlib

# torch's paths: na.amp (GradScaler, autocast), na.nn, na.optim, na.utils.data, na.utils.checkpoint;
# and na.graph.trace, na.onnx.export
from neural_arch import amp, errors, graph, nn, onnx, optim, utils
from neural_arch.autograd import (
    Function,
    Tensor,
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from neural_arch.autograd.autocast import autocast, get_autocast_dtype, is_autocast_enabled  # torch's names
from neural_arch.autograd.gradcheck import gradcheck
from neural_arch.autograd.legacy import (  # torch's legacy typed constructors: na.LongTensor([1, 2])
    BFloat16Tensor,
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from neural_arch.backend import (
    Device,
    Generator,
    bfloat16,
    cuda_is_available,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    manual_seed,
    promote_types,
    seed,
    set_default_dtype,
    uint8,
)
from neural_arch.backend import bool_ as bool  # noqa: A001 - torch's name
from neural_arch.backend.dtypes import complex64, complex128  # the fft ops' outputs
from neural_arch.backend.threads import get_num_threads, set_num_threads  # torch's names
from neural_arch.compile import compile  # noqa: A004 - torch.compile's name: capture a step once, replay it
from neural_arch.io import load, save  # na.save / na.load (safetensors)
from neural_arch.nn.functional import (  # torch's top-level spellings of these functional ops
    avg_pool1d,
    bilinear,
    celu,
    conv1d,
    conv2d,
    conv_transpose2d,
    cosine_similarity,
    group_norm,
    layer_norm,
    log_softmax,
    max_pool1d,
    max_pool2d,
    relu,
    rms_norm,
    selu,
    softmax,
)
from neural_arch.ops import *  # noqa: F401,F403
from neural_arch.ops.elementwise import abs, pow, round  # noqa: A004,F401
from neural_arch.ops.reduce import all, any, max, min, sum  # noqa: A004,F401
from neural_arch.viz.summary import summary  # na.summary(model, input_size=...), as torchinfo

# NOTE: importing changes nothing process-wide (NumPy's BLAS threads, malloc, os.environ): the
# threading policy applies inside our own calls (backend/threads.py), the allocation policy from the
# first op on (backend/memory.py).

# na.linalg, na.fft, na.distributions (torch's names), bound here: `from neural_arch.ops import *` above also
# brings the modules ops.linalg and ops.fft under the first two names
linalg, fft, distributions = (_importlib.import_module(f"neural_arch.{m}") for m in ("linalg", "fft", "distributions"))
cfloat, cdouble = complex64, complex128
half = float16
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001
device = Device

__version__ = "0.1.0"

# torch's top-level names added with the coverage stream: constants, dtypes, the two ops whose names are also
# op families in neural_arch.ops (so `from neural_arch.ops import *` above brings the modules), rng state
from math import e, inf, nan, pi  # noqa: E402,F401 - torch.e, torch.pi, torch.inf, torch.nan

import numpy as _np  # noqa: E402

from neural_arch.backend.dtypes import finfo, iinfo  # noqa: E402,F401
from neural_arch.backend.precision import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402,F401
from neural_arch.backend.random import get_rng_state, initial_seed, set_rng_state  # noqa: E402,F401
from neural_arch.ops.torch_names import embedding, norm  # noqa: E402,F401

newaxis = None  # x[na.newaxis] adds a dimension, as None does
dtype = _np.dtype  # every neural-arch dtype is a NumPy dtype: isinstance(na.float32, na.dtype)
short = int16
uint16, uint32, uint64 = _np.dtype(_np.uint16), _np.dtype(_np.uint32), _np.dtype(_np.uint64)
