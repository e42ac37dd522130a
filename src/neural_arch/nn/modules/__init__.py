"""Layers: one family per file, each a ``Module`` over ``nn.functional``."""

from neural_arch.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from neural_arch.nn.modules.module import Module, RemovableHandle
