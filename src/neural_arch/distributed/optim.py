"""``ZeroRedundancyOptimizer``: optimizer state sharded over ranks (ZeRO stage 1).

With plain DDP every rank keeps the whole optimizer state (Adam: two arrays
per parameter, twice the model). Here each parameter is *owned* by one rank;
only the owner keeps its state and updates it. A step is then

1. every rank: gradients already averaged (by DistributedDataParallel);
2. owner of p: ``p <- update(p, g_p, state_p)`` with the wrapped optimizer;
3. every rank: ``p <- broadcast(p, src=owner(p))``,

which leaves every replica's parameters identical to an unsharded step, with
about 1/N of the optimizer state per rank. Parameters are assigned as torch's
ZeroRedundancyOptimizer does: largest first, each to the rank holding the
fewest elements so far (every rank computes the same assignment).

``consolidate_state_dict(to=0)`` gathers the shards on one rank, whose
``state_dict()`` is then the unsharded optimizer's (torch's format, indices over
all parameters), ready for a checkpoint; ``load_state_dict`` takes such a full
state on every rank and keeps each rank's own share, so a run can resume with a
different number of ranks.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor, zero_grads
from neural_arch.backend import comm as _comm
from neural_arch.errors import CheckpointError, ConfigError, DistributedError


def _plain(value):
    """Optimizer state values as picklable NumPy (Tensors unwrapped, arrays copied)."""
    if isinstance(value, Tensor):
        return np.array(value.data)
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


class ZeroRedundancyOptimizer:
    """Wrap ``optimizer_class`` so that each rank keeps the state of its own share of ``params``.

    Args:
        params: the parameters (an iterable of Tensors; all go in one group with ``defaults``).
        optimizer_class: e.g. ``optim.AdamW``; built on this rank's share with ``**defaults``.
        process_group: a ``backend.comm.Communicator``; default: the one ``init_process_group`` made.
    """

    def __init__(self, params, optimizer_class, process_group=None, **defaults):
        self.params = list(params)
        if not self.params:
            raise ConfigError("ZeroRedundancyOptimizer got an empty parameter list")
        if isinstance(self.params[0], dict):
            raise ConfigError("ZeroRedundancyOptimizer takes a flat list of parameters (one group); "
                              "parameter groups are not supported yet")
        self.comm = process_group if process_group is not None else _comm.default()
        self.optimizer_class, self.defaults = optimizer_class, defaults
        self.owner = self._partition()
        mine = [p for p, r in zip(self.params, self.owner) if r == self.comm.rank]
        # A rank that owns nothing (fewer parameters than ranks) still holds the options, for lr schedules.
        self.optim = optimizer_class(mine, **defaults) if mine else None
        self._groups_without_params = [dict(defaults, params=[])] if not mine else None
        self._consolidated = None

    def _partition(self) -> list:
        load = [0] * self.comm.size
        owner = [0] * len(self.params)
        for i in sorted(range(len(self.params)), key=lambda i: (-self.params[i].data.size, i)):
            r = min(range(self.comm.size), key=lambda r: (load[r], r))
            owner[i] = r
            load[r] += self.params[i].data.size
        return owner

    @property
    def param_groups(self) -> list:
        """This rank's parameter groups (its own share); schedulers set ``lr`` here on every rank."""
        return self.optim.param_groups if self.optim is not None else self._groups_without_params

    @property
    def state(self):
        """This rank's shard of the state (``{param: {name: array}}``)."""
        return self.optim.state if self.optim is not None else {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads(self.params, set_to_none)

    def step(self, closure=None):
        """Update this rank's share, then broadcast every parameter from its owner."""
        loss = self.optim.step(closure) if self.optim is not None else None
        works = [self.comm.broadcast(p.data, src, check=False) for p, src in zip(self.params, self.owner)]
        for w in works:
            w.wait()
        self._consolidated = None
        return loss

    def state_bytes(self) -> int:
        """Bytes of array state this rank holds (what sharding divides by N)."""
        return sum(v.nbytes for s in self.state.values() for v in s.values() if isinstance(v, np.ndarray))

    # -- checkpoints -----------------------------------------------------------------------------------
    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather every rank's shard on rank ``to`` (call on every rank); then ``state_dict()`` works there."""
        local = {}
        if self.optim is not None:
            index = {id(p): i for i, p in enumerate(self.params)}
            for p, s in self.optim.state.items():
                if s:
                    local[index[id(p)]] = {k: _plain(v) for k, v in s.items()}
        shards = self.comm.gather_object(local, dst=to)
        if self.comm.rank == to:
            state = {}
            for shard in shards:
                state.update(shard)
            options = {k: v for k, v in self.param_groups[0].items() if k != "params"}
            group = dict(options, params=list(range(len(self.params))))
            self._consolidated = {"state": dict(sorted(state.items())), "param_groups": [group]}

    def state_dict(self) -> dict:
        """The whole optimizer's state, in the wrapped optimizer's (torch's) format: only on the rank that
        :meth:`consolidate_state_dict` sent it to, after the last step."""
        if self._consolidated is None:
            raise DistributedError(f"ZeroRedundancyOptimizer.state_dict on rank {self.comm.rank}: call "
                                   "consolidate_state_dict(to=this rank) on every rank first (after the last step)")
        return self._consolidated

    def load_state_dict(self, state_dict: dict) -> None:
        """Take a full state (from :meth:`state_dict`, any world size) and keep this rank's share."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            n = sum(len(g["params"]) for g in groups)
            raise CheckpointError(f"ZeroRedundancyOptimizer.load_state_dict: the saved state covers {n} parameters "
                                  f"in {len(groups)} group(s); this optimizer has {len(self.params)} in one")
        options = {k: v for k, v in groups[0].items() if k != "params"}
        if self.optim is None:
            self._groups_without_params[0].update(options)
            return
        saved = {int(k): v for k, v in state_dict["state"].items()}  # a checkpoint may hold the keys as text
        mine = [i for i, r in enumerate(self.owner) if r == self.comm.rank]
        local_state = {j: saved[i] for j, i in enumerate(mine) if i in saved}
        self.optim.load_state_dict({"state": local_state,
                                    "param_groups": [dict(options, params=list(range(len(mine))))]})
