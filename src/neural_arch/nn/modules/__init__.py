"""Layers: one family per file, each a ``Module`` over ``nn.functional``."""

from neural_arch.nn.modules import activation_extra as _activation_extra
from neural_arch.nn.modules import adaptive as _adaptive
from neural_arch.nn.modules import attention_functional as _attention_functional  # noqa: F401 (registers F's)
from neural_arch.nn.modules import conv3d as _conv3d
from neural_arch.nn.modules import data_parallel as _data_parallel
from neural_arch.nn.modules import distance as _distance
from neural_arch.nn.modules import dropout_extra as _dropout_extra
from neural_arch.nn.modules import embedding_bag as _embedding_bag
from neural_arch.nn.modules import fold as _fold
from neural_arch.nn.modules import lazy as _lazy
from neural_arch.nn.modules import legacy as _legacy
from neural_arch.nn.modules import loss_extra as _loss_extra
from neural_arch.nn.modules import normalization_extra as _normalization_extra
from neural_arch.nn.modules import padding as _padding
from neural_arch.nn.modules import pixelshuffle as _pixelshuffle
from neural_arch.nn.modules import pooling3d as _pooling3d
from neural_arch.nn.modules import pooling_extra as _pooling_extra
from neural_arch.nn.modules import upsampling as _upsampling
from neural_arch.nn.modules.activation import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Tanh,
)
from neural_arch.nn.modules.activation_extra import *  # noqa: F401,F403
from neural_arch.nn.modules.adaptive import *  # noqa: F401,F403
from neural_arch.nn.modules.attention import MultiheadAttention
from neural_arch.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from neural_arch.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from neural_arch.nn.modules.conv3d import *  # noqa: F401,F403
from neural_arch.nn.modules.data_parallel import *  # noqa: F401,F403
from neural_arch.nn.modules.distance import *  # noqa: F401,F403
from neural_arch.nn.modules.dropout import Dropout, Dropout2d
from neural_arch.nn.modules.dropout_extra import *  # noqa: F401,F403
from neural_arch.nn.modules.embedding import Embedding
from neural_arch.nn.modules.embedding_bag import *  # noqa: F401,F403
from neural_arch.nn.modules.flatten import Flatten, Unflatten
from neural_arch.nn.modules.fold import *  # noqa: F401,F403
from neural_arch.nn.modules.lazy import *  # noqa: F401,F403
from neural_arch.nn.modules.legacy import *  # noqa: F401,F403
from neural_arch.nn.modules.linear import Bilinear, Identity, Linear
from neural_arch.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from neural_arch.nn.modules.loss_extra import *  # noqa: F401,F403
from neural_arch.nn.modules.module import Module, RemovableHandle
from neural_arch.nn.modules.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
)
from neural_arch.nn.modules.normalization_extra import *  # noqa: F401,F403
from neural_arch.nn.modules.padding import *  # noqa: F401,F403
from neural_arch.nn.modules.pixelshuffle import *  # noqa: F401,F403
from neural_arch.nn.modules.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from neural_arch.nn.modules.pooling3d import *  # noqa: F401,F403
from neural_arch.nn.modules.pooling_extra import *  # noqa: F401,F403
from neural_arch.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from neural_arch.nn.modules.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from neural_arch.nn.modules.upsampling import *  # noqa: F401,F403

__all__ = [
    "Module", "RemovableHandle", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Identity", "Linear", "Bilinear", "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
    "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d",
    "LayerNorm", "RMSNorm", "GroupNorm", "Embedding", "Dropout", "Dropout2d", "Flatten", "Unflatten",
    "ReLU", "ReLU6", "GELU", "SiLU", "Tanh", "Sigmoid", "LogSigmoid", "Softmax", "LogSoftmax", "Softmin",
    "LeakyReLU", "ELU", "CELU", "Mish", "Softplus", "Hardtanh", "Hardswish", "Hardsigmoid", "SELU", "GLU",
    "CrossEntropyLoss", "MSELoss", "L1Loss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss",
    "KLDivLoss", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerDecoder",
]
__all__ += ["Transformer", "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
__all__ += [name for m in (_activation_extra, _adaptive, _conv3d, _data_parallel, _distance, _dropout_extra,
                           _embedding_bag, _fold, _lazy, _legacy, _loss_extra, _normalization_extra, _padding,
                           _pixelshuffle, _pooling3d, _pooling_extra, _upsampling) for name in m.__all__]
