"""``neural_arch.nn.functional`` (imported as ``F``): torch's functional API.

A thin facade: every name here is an op from :mod:`neural_arch.ops` with
torch's signature. Each op family lists what it exports in ``__all__``.
"""

from neural_arch.ops.activation import *  # noqa: F401,F403
from neural_arch.ops.activation_extra import *  # noqa: F401,F403
from neural_arch.ops.attention import *  # noqa: F401,F403
from neural_arch.ops.conv import *  # noqa: F401,F403
from neural_arch.ops.conv3d import *  # noqa: F401,F403
from neural_arch.ops.ctc import *  # noqa: F401,F403
from neural_arch.ops.dropout import *  # noqa: F401,F403
from neural_arch.ops.dropout_extra import *  # noqa: F401,F403
from neural_arch.ops.embedding import *  # noqa: F401,F403
from neural_arch.ops.embedding_bag import *  # noqa: F401,F403
from neural_arch.ops.fractional_pool import *  # noqa: F401,F403
from neural_arch.ops.grouped_mm import *  # noqa: F401,F403
from neural_arch.ops.interpolate import *  # noqa: F401,F403
from neural_arch.ops.linear import *  # noqa: F401,F403
from neural_arch.ops.loss import *  # noqa: F401,F403
from neural_arch.ops.loss_extra import *  # noqa: F401,F403
from neural_arch.ops.norm import *  # noqa: F401,F403
from neural_arch.ops.norm_extra import *  # noqa: F401,F403
from neural_arch.ops.pool import *  # noqa: F401,F403
from neural_arch.ops.pool3d import *  # noqa: F401,F403
from neural_arch.ops.pool_extra import *  # noqa: F401,F403
from neural_arch.ops.shape import pad  # noqa: F401
from neural_arch.ops.spatial import *  # noqa: F401,F403
