"""neural-arch: a deep learning framework on NumPy, readable end to end.

    import neural_arch as na
    x = na.randn(3, requires_grad=True)
    (x * x).sum().backward()
    x.grad                      # 2 x
"""

from neural_arch import errors, graph, nn, onnx, optim  # na.nn, na.optim (torch.nn, torch.optim); na.graph.trace, na.onnx.export
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
from neural_arch.autograd.gradcheck import gradcheck
from neural_arch import amp  # na.amp (torch.amp): GradScaler, autocast
from neural_arch.autograd.autocast import autocast, get_autocast_dtype, is_autocast_enabled  # torch's names
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
from neural_arch.backend.threads import get_num_threads, set_num_threads  # torch's names
from neural_arch.io import load, save  # na.save / na.load (safetensors)
from neural_arch.ops import *  # noqa: F401,F403
from neural_arch.ops.elementwise import abs, pow, round  # noqa: A004,F401
from neural_arch.ops.reduce import all, any, max, min, sum  # noqa: A004,F401
from neural_arch.viz.summary import summary  # na.summary(model, input_size=...), as torchinfo

# NOTE: importing changes nothing process-wide (NumPy's BLAS threads, malloc, os.environ): the
# threading policy applies inside our own calls (backend/threads.py), the allocation policy from the
# first op on (backend/memory.py).

half = float16
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001
device = Device

__version__ = "0.1.0"
