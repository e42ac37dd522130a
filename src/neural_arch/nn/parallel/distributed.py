"""``DistributedDataParallel``: one model replica per rank, gradients averaged in buckets during backward.

Each rank runs the same model on its own share of the batch. After backward
every parameter's gradient must be the average over ranks,

    g_p = (1/N) * sum_r g_p^(r),

which (for a loss that is a mean over the batch and equal shares B/N) equals
the gradient one process would get from the whole batch B.

How (torch's design, on MPI):

* At construction rank 0's parameters and buffers are broadcast, so every
  replica starts equal. With ``broadcast_buffers`` (the default, as torch)
  rank 0's buffers are broadcast again at every forward: BatchNorm's running
  statistics follow rank 0's shares (each rank normalises with its own batch
  statistics, as torch's DDP without SyncBatchNorm).
* Parameters are laid into buckets of about ``bucket_cap_mb`` in *reverse*
  order (backward produces the last layers' gradients first), one dtype per
  bucket. A hook on each parameter copies its (accumulated) gradient into its
  bucket's flat buffer as soon as backward has finished it; when a bucket is
  full its non-blocking ``Iallreduce`` starts, so communication overlaps the
  rest of backward. Buckets start in a fixed order (MPI needs every rank to
  start collectives in the same order).
* At the end of backward (an engine callback) the pending allreduces are
  waited, divided by N and written back into ``p.grad``.
* ``no_sync()``: backward inside it only accumulates local gradients; the next
  backward outside it averages the accumulated sums.
* A parameter that received no gradient is an error naming it, unless
  ``find_unused_parameters=True``: then its bucket slot is filled with its
  current gradient (or zeros) and ranks agree on which parameters were used at
  all, by one extra small allreduce; parameters unused on every rank keep
  ``grad`` as it was (None), as torch.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from neural_arch.autograd.engine import queue_callback
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import comm as _comm
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import DTypeError, GradientError, ShapeError
from neural_arch.nn.modules.module import Module

_REDUCIBLE = (np.dtype(np.float32), np.dtype(np.float64))


class _Bucket:
    """Parameters (by index) whose gradients travel in one flat buffer."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.indices: list = []
        self.offsets: list = []
        self.size = 0
        self.flat = None
        self.ready = 0
        self.work = None

    def add(self, index: int, numel: int) -> None:
        self.indices.append(index)
        self.offsets.append(self.size)
        self.size += numel


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of the default process group.

    Args:
        module: the model; every rank must build the same architecture.
        bucket_cap_mb: the size of a gradient bucket in MiB (torch's default, 25).
        find_unused_parameters: allow parameters that get no gradient in a step (costs one small
            allreduce per step); without it such a parameter raises a GradientError naming it.
        broadcast_buffers: broadcast rank 0's buffers at every forward (torch's default).
        process_group: a ``backend.comm.Communicator``; default: the one ``init_process_group`` made.

    Example::

        dist.init_process_group("mpi")
        model = DistributedDataParallel(Net())
        loss = F.cross_entropy(model(x_shard), y_shard)
        loss.backward()          # gradients are now averaged over ranks
        optimizer.step()
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, find_unused_parameters: bool = False,
                 broadcast_buffers: bool = True, process_group=None):
        super().__init__()
        self.module = module
        comm = process_group if process_group is not None else _comm.default()
        object.__setattr__(self, "_comm", comm)
        self.find_unused_parameters = find_unused_parameters
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_mb = bucket_cap_mb
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._check_replicas_agree()
        self._sync_from_rank0(list(self._params) + [b for b in module.buffers()])
        self._buckets, self._slot = self._make_buckets(int(bucket_cap_mb * 2**20))
        self._require_sync = True
        self._pass_open = False
        self.last_wait_s = 0.0
        self._ready = np.zeros(len(self._params), dtype=bool)
        self._next_launch = 0
        self._hook_handles = [p.register_hook(self._make_hook(i)) for i, p in enumerate(self._params)]

    # -- construction ---------------------------------------------------------------------------------
    def _check_replicas_agree(self) -> None:
        """Every rank must hold the same parameter list: compare (name, shape, dtype) on every rank."""
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in zip(self._names, self._params)]
        everyone = self._comm.comm.allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs != mine:
                diff = next((f"{a} here, {b} on rank {rank}" for a, b in zip(mine, theirs) if a != b),
                            f"{len(mine)} parameters here, {len(theirs)} on rank {rank}")
                raise ShapeError(f"DistributedDataParallel: the ranks built different models ({diff}); build the "
                                 "same architecture on every rank")
        for n, p in zip(self._names, self._params):
            if not is_floating(p.data.dtype):
                raise DTypeError(f"DistributedDataParallel: parameter {n!r} has dtype {p.dtype}; only floating "
                                 "parameters can be averaged")

    def _sync_from_rank0(self, tensors) -> None:
        if self._comm.size == 1:
            return
        # Broadcast moves bytes: a dtype MPI cannot reduce (float16, bfloat16) travels as its raw bytes.
        works = [self._comm.broadcast(t.data if _comm.reducible(t.data.dtype) else
                                      t.data.ravel(order="K").view(np.uint8), 0, check=False) for t in tensors]
        for w in works:
            w.wait()

    def _make_buckets(self, cap_bytes: int):
        """Reverse parameter order; a new bucket when the dtype changes or the cap is reached."""
        buckets, slot = [], [None] * len(self._params)
        open_by_dtype: dict = {}
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            # float16/bfloat16 gradients travel (and are summed) as float32: MPI has no type for them
            dtype = p.data.dtype if p.data.dtype in _REDUCIBLE else np.dtype(np.float32)
            b = open_by_dtype.get(dtype)
            if b is None or (b.size and (b.size + p.data.size) * dtype.itemsize > cap_bytes):
                b = open_by_dtype[dtype] = _Bucket(dtype)
                buckets.append(b)
            slot[i] = (b, len(b.indices))
            b.add(i, p.data.size)
        for b in buckets:
            b.flat = np.zeros(b.size, dtype=b.dtype)
        return buckets, slot

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        if self._pass_open:  # the previous backward raised before its end: start clean
            self._pass_open = False
            for b in self._buckets:
                b.ready, b.work = 0, None
        if self.broadcast_buffers:
            self._sync_from_rank0(list(self.module.buffers()))
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients (gradient accumulation); the first
        backward after the block averages the accumulated sums."""
        previous, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = previous

    # -- backward: hooks, buckets, the end-of-pass callback ----------------------------------------
    def _make_hook(self, index: int):
        def hook(grad):
            if self._require_sync and self._comm.size > 1:
                self._mark_ready(index, grad.data)

        return hook

    def _mark_ready(self, index: int, grad) -> None:
        if not self._pass_open:
            self._pass_open = True
            self._ready[:] = False
            self._next_launch = 0
            queue_callback(self._finish_pass)
        if self._ready[index]:
            raise GradientError(f"DistributedDataParallel: parameter {self._names[index]!r} received a gradient "
                                "twice in one backward (a reentrant backward?); this is not supported")
        self._ready[index] = True
        bucket, k = self._slot[index]
        start = bucket.offsets[k]
        view = bucket.flat[start:start + grad.size]
        p = self._params[index]
        if p.grad is None:  # the engine adds ``grad`` into p.grad after this hook: bucket the sum it will make
            np.copyto(view, grad.reshape(-1), casting="unsafe")
        else:
            np.add(p.grad.data.reshape(-1), grad.reshape(-1), out=view, casting="unsafe")
        bucket.ready += 1
        self._launch_full_buckets()
        _comm.progress()

    def _launch_full_buckets(self) -> None:
        buckets = self._buckets
        while (self._next_launch < len(buckets)
               and buckets[self._next_launch].ready == len(buckets[self._next_launch].indices)):
            b = buckets[self._next_launch]
            b.work = self._comm.allreduce(b.flat, "sum", check=False)
            self._next_launch += 1

    def _finish_pass(self) -> None:
        self._pass_open = False
        started = time.perf_counter()
        try:
            used = None
            if not self._ready.all():
                missing = [self._names[i] for i in np.flatnonzero(~self._ready)]
                if not self.find_unused_parameters:
                    self._wait_launched()
                    raise GradientError(
                        f"DistributedDataParallel: {len(missing)} parameter(s) received no gradient in this backward: "
                        f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. Make every parameter take "
                        "part in the loss, or pass find_unused_parameters=True")
                for i in np.flatnonzero(~self._ready):
                    bucket, k = self._slot[i]
                    start = bucket.offsets[k]
                    view = bucket.flat[start:start + self._params[i].data.size]
                    g = self._params[i].grad
                    view[...] = 0 if g is None else g.data.reshape(-1)
                    bucket.ready += 1
                self._launch_full_buckets()
            if self.find_unused_parameters:
                used = self._ready.astype(np.uint8)
                used_work = self._comm.allreduce(used, "max", check=False)
            self._wait_launched()
            if used is not None:
                used_work.wait()
            self._write_back(used)
            # what communication cost this step beyond what backward hid (benchmarks/distributed.py reports it)
            self.last_wait_s = time.perf_counter() - started
        finally:
            for b in self._buckets:
                b.ready, b.work = 0, None

    def _wait_launched(self) -> None:
        for b in self._buckets:
            if b.work is not None:
                b.work.wait()

    def _write_back(self, used) -> None:
        scale = 1.0 / self._comm.size
        for b in self._buckets:
            b.flat *= scale
            for i, start in zip(b.indices, b.offsets):
                p = self._params[i]
                if used is not None and not used[i]:
                    continue  # unused on every rank: its gradient stays as it was
                avg = b.flat[start:start + p.data.size].reshape(p.data.shape)
                if p.grad is None:
                    p.grad = Tensor._wrap(avg.astype(p.data.dtype))
                else:
                    np.copyto(p.grad.data, avg, casting="unsafe")

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{b.size * b.dtype.itemsize / 2**20:.2f}" for b in self._buckets)
        return f"world_size={self._comm.size}, buckets (MiB)=[{sizes}]"
