"""Layer 4: ``Module``, ``Parameter``, layers, ``init``, ``functional`` and ``utils``, like ``torch.nn``.

    import neural_arch.nn as nn
    import neural_arch.nn.functional as F
"""

from neural_arch.nn import functional, init, parallel, utils  # noqa: F401
from neural_arch.nn.modules import *  # noqa: F401,F403
from neural_arch.nn.parameter import Buffer, Parameter  # noqa: F401
