"""Layer 3: every differentiable op, one family per file.

Importing this package attaches the ops to ``Tensor`` as methods and
operators (see ``tensor_methods.py``).
"""

from neural_arch.ops import tensor_methods as _tensor_methods
from neural_arch.ops.complex import *  # noqa: F401,F403
from neural_arch.ops.creation import *  # noqa: F401,F403
from neural_arch.ops.cumulative import *  # noqa: F401,F403
from neural_arch.ops.decomposition import det, slogdet  # noqa: F401
from neural_arch.ops.elementwise import *  # noqa: F401,F403
from neural_arch.ops.index import gather, getitem, index_select, masked_fill, narrow, scatter_add  # noqa: F401
from neural_arch.ops.layout import *  # noqa: F401,F403
from neural_arch.ops.linalg import bmm, dot, einsum, matmul, mm, outer  # noqa: F401
from neural_arch.ops.matrix_functions import *  # noqa: F401,F403
from neural_arch.ops.matrix_functions import matrix_rank  # noqa: F401
from neural_arch.ops.matrix_functions import old_cholesky as cholesky  # noqa: F401
from neural_arch.ops.matrix_functions import old_qr as qr  # noqa: F401
from neural_arch.ops.matrix_functions import old_svd as svd  # noqa: F401
from neural_arch.ops.moe import permute_rows  # noqa: F401
from neural_arch.ops.pointwise import *  # noqa: F401,F403
from neural_arch.ops.products import *  # noqa: F401,F403
from neural_arch.ops.reduce import *  # noqa: F401,F403
from neural_arch.ops.sampling import *  # noqa: F401,F403  (after creation: its normal takes tensors too)
from neural_arch.ops.scan import causal_depthwise_conv1d, selective_scan  # noqa: F401
from neural_arch.ops.scatter import *  # noqa: F401,F403
from neural_arch.ops.shape import *  # noqa: F401,F403
from neural_arch.ops.sorting import *  # noqa: F401,F403
from neural_arch.ops.statistics import *  # noqa: F401,F403
from neural_arch.ops.windows import *  # noqa: F401,F403

_tensor_methods.register()
globals().update(_tensor_methods.inplace_functions())  # torch.relu_(x), torch.abs_(x), ...
from neural_arch.ops import torch_names as _torch_names  # noqa: E402  (torch's top-level spellings of existing ops)
from neural_arch.ops.incomplete_gamma import *  # noqa: F401,F403,E402  (torch.igamma, torch.igammac)

# all but norm and embedding, which would hide the op families of those names here (the root binds them)
globals().update({n: getattr(_torch_names, n) for n in _torch_names.__all__ if n not in ("norm", "embedding")})
