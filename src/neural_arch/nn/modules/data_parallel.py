"""``DataParallel`` on a machine without GPUs: torch's behaviour there, the wrapped module runs as is."""

from __future__ import annotations

from neural_arch.nn.modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wraps ``module`` (its parameters appear under ``module.``, as torch's). With no GPUs, torch's
    DataParallel calls the module directly, and so does this one; for several processes use
    ``nn.parallel.DistributedDataParallel``."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module, self.device_ids, self.output_device, self.dim = module, [], None, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
