"""Data parallelism over processes: :class:`DistributedDataParallel` (MPI, through ``backend/comm.py``)."""

from neural_arch.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
