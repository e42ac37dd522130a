"""The default process group and torch.distributed's collectives on Tensors.

    import neural_arch.distributed as dist
    dist.init_process_group("mpi")            # under mpiexec -n N / srun
    t = na.ones(3) * (dist.get_rank() + 1)
    dist.all_reduce(t)                        # every rank: 1 + 2 + ... + N
    work = dist.all_reduce(t, async_op=True)  # ... compute ...
    work.wait()

Collectives work in place on ``tensor.data`` (outside autograd, as torch's).
Before moving data, each one checks with a small allgather that every rank
passed the same dtype (and shape where it must match): a mismatch raises the
same ShapeError/DTypeError on every rank instead of corrupting memory or
hanging. That costs one extra latency-bound message per call; DDP's internal
buckets, whose layout every rank built identically, skip it.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys

import numpy as np

from neural_arch.backend import comm as _comm
from neural_arch.distributed.watchdog import Watchdog
from neural_arch.errors import DistributedError, ShapeError, shape_str


class ReduceOp:
    """Reduction operators, by torch's names. ``AVG`` divides the sum by the world size."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


class _Group:
    def __init__(self, communicator, watchdog):
        self.comm = communicator
        self.watchdog = watchdog


_group: _Group | None = None


def init_process_group(backend: str = "mpi", watchdog_interval: float = 0.5, **_torch_kwargs) -> None:
    """Join the job this process was launched in (mpiexec, srun, ``neural-arch train --nproc``).

    Only ``backend="mpi"`` exists; torch's ``init_method``/``world_size``/``rank`` arguments are accepted and
    ignored (MPI's launcher decides them). Starts the lost-rank watchdog (``distributed/watchdog.py``).
    """
    global _group
    if backend != "mpi":
        raise DistributedError(f"init_process_group: backend {backend!r} is not available; neural-arch runs on 'mpi'")
    if _group is not None:
        raise DistributedError("init_process_group: the default process group is already initialised; "
                               "call destroy_process_group() first")
    communicator = _comm.Communicator()
    peers = communicator.comm.allgather((socket.gethostname(), os.getpid()))
    _group = _Group(communicator, Watchdog(communicator.rank, peers, watchdog_interval).start())
    _comm.set_default(communicator)
    atexit.register(_atexit_destroy)
    _abort_on_uncaught_exception(communicator)


def _abort_on_uncaught_exception(communicator) -> None:
    """An exception that ends one rank must end the job: otherwise that rank waits in MPI_Finalize and the
    others in their next collective, for ever (what ``python -m mpi4py`` does, installed here)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if _group is not None and communicator.size > 1:
            sys.stderr.write(f"neural-arch: rank {communicator.rank} stopped on {kind.__name__}; aborting the job\n")
            sys.stderr.flush()
            _group.watchdog.stop()
            communicator.MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook


def _atexit_destroy() -> None:
    if _group is not None:
        _group.watchdog.stop()  # a peer that exits normally after us must not look like a lost rank


def destroy_process_group() -> None:
    """Leave the process group (waits at a barrier so no rank frees it while others still talk)."""
    global _group
    if _group is None:
        return
    group, _group = _group, None
    _comm.set_default(None)
    group.comm.barrier().wait()
    group.watchdog.stop()
    group.comm.free()


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has run (and :func:`destroy_process_group` has not)."""
    return _group is not None


def is_available() -> bool:
    """Whether mpi4py can be imported."""
    try:
        _comm.mpi()
    except DistributedError:
        return False
    return True


def _default() -> _Group:
    if _group is None:
        raise DistributedError("no process group: call neural_arch.distributed.init_process_group() first "
                               "(and start the script with mpiexec -n N or neural-arch train --nproc N)")
    return _group


def communicator() -> _comm.Communicator:
    """The default group's array-level communicator (``backend.comm.Communicator``)."""
    return _default().comm


def get_rank() -> int:
    """This process's rank, 0 ... world size - 1 (0 when no group is initialised, as a single process)."""
    return 0 if _group is None else _group.comm.rank


def get_world_size() -> int:
    """The number of ranks (1 when no group is initialised)."""
    return 1 if _group is None else _group.comm.size


def _finish(work, async_op):
    return work if async_op else work.wait()


def barrier(async_op: bool = False):
    """Wait until every rank has reached this call."""
    return _finish(_default().comm.barrier(), async_op)


def all_reduce(tensor, op: str = ReduceOp.SUM, group=None, async_op: bool = False):
    """``tensor`` becomes, on every rank, the reduction of all ranks' tensors (in place)."""
    comm = _default().comm
    arr = tensor.data
    if op == ReduceOp.AVG:
        work = comm.allreduce(arr, "sum")
        size, then = comm.size, work.then

        def divide():
            if then is not None:
                then()
            np.divide(arr, size, out=arr, casting="unsafe")

        work.then = divide
        return _finish(work, async_op)
    return _finish(comm.allreduce(arr, op), async_op)


def broadcast(tensor, src: int = 0, group=None, async_op: bool = False):
    """``tensor`` becomes rank ``src``'s on every rank (in place)."""
    return _finish(_default().comm.broadcast(tensor.data, src), async_op)


def _check_per_rank(op: str, name: str, tensors: list, like, size: int) -> None:
    """One tensor per rank, each shaped as ``like``: else a ShapeError naming the op and the list."""
    if len(tensors) != size:
        raise ShapeError(f"{op}: {name} has {len(tensors)} tensors for a world size of {size}")
    for t in tensors:
        if t.shape != like.shape:
            raise ShapeError(f"{op}: every tensor in {name} must have the shape {shape_str(like.shape)}, "
                             f"got {shape_str(t.shape)}")


def all_gather(tensor_list: list, tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` (one tensor per rank, shaped as ``tensor``) with rank r's ``tensor``."""
    comm = _default().comm
    _check_per_rank("all_gather", "tensor_list", tensor_list, tensor, comm.size)
    work = comm.allgather(tensor.data)

    def scatter_out():
        for t, row in zip(tensor_list, work.result):
            t.data[...] = row

    work.then = scatter_out
    return _finish(work, async_op)


def reduce_scatter(output, input_list: list, op: str = ReduceOp.SUM, group=None, async_op: bool = False):
    """``output`` on rank r becomes the reduction over ranks of their ``input_list[r]``."""
    comm = _default().comm
    _check_per_rank("reduce_scatter", "input_list", input_list, output, comm.size)
    stacked = np.stack([t.data for t in input_list]).astype(output.data.dtype, copy=False)
    work = comm.reduce_scatter(stacked, "sum" if op == ReduceOp.AVG else op)
    size = comm.size

    def copy_out():
        out = work.result[0]
        output.data[...] = out / size if op == ReduceOp.AVG else out

    work.then = copy_out
    return _finish(work, async_op)
