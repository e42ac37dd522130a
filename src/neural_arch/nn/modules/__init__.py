"""Layers: one family per file, each a ``Module`` over ``nn.functional``."""

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
from neural_arch.nn.modules.attention import MultiheadAttention
from neural_arch.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from neural_arch.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from neural_arch.nn.modules.dropout import Dropout, Dropout2d
from neural_arch.nn.modules.embedding import Embedding
from neural_arch.nn.modules.flatten import Flatten, Unflatten
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
from neural_arch.nn.modules.module import Module, RemovableHandle
from neural_arch.nn.modules.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
)
from neural_arch.nn.modules.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from neural_arch.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from neural_arch.nn.modules.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

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
__all__ += ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
