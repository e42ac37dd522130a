"""Layer 7: multi-process data-parallel training on MPI, with torch.distributed's names.

* :func:`init_process_group`, :func:`get_rank`, :func:`get_world_size`, :func:`barrier`,
  :func:`all_reduce`, :func:`broadcast`, :func:`all_gather`, :func:`reduce_scatter`,
  :func:`destroy_process_group`; ``async_op=True`` returns a work handle with ``wait()``.
* :class:`~neural_arch.nn.parallel.DistributedDataParallel` (re-exported here), gradient averaging in
  buckets overlapping backward.
* :class:`neural_arch.distributed.optim.ZeroRedundancyOptimizer`: optimizer state sharded over ranks.
* ``neural-arch train CONFIG --nproc N`` (``distributed/launch.py``) starts N ranks with mpiexec.

The MPI calls themselves live one layer down, on raw arrays, in ``backend/comm.py``, so that
``nn.parallel`` (layer 4) can use them without importing this package.
"""

from neural_arch.distributed import optim
from neural_arch.distributed.process_group import (
    ReduceOp,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    communicator,
    destroy_process_group,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    reduce_scatter,
)
from neural_arch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistributedDataParallel", "ReduceOp", "all_gather", "all_reduce", "barrier", "broadcast", "communicator",
    "destroy_process_group", "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
    "optim", "reduce_scatter",
]
