"""One process of ``python -m benchmarks distributed`` (see benchmarks/distributed.py).

    python -m benchmarks.distributed_rank --framework ours|torch --workload mlp|cnn|gpt --steps S

Runs ``S`` timed training steps of the workload on this rank's share of the global batch (neural-arch
under mpiexec with DistributedDataParallel; torch with the gloo backend when RANK/WORLD_SIZE are set;
either alone when there is one process) and, on rank 0, prints one JSON line: the step times, the time
each step waited for its allreduces after backward (ours), and allreduce times of 0.25, 1, 4 and 16 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

SIZES_MB = (0.25, 1, 4, 16)  # allreduce message sizes timed at the end of a multi-rank run
WORKLOADS = {  # global batch, as benchmarks/train.py
    "mlp": {"batch": 128, "x": (784,)},
    "cnn": {"batch": 64, "x": (1, 28, 28)},
    "gpt": {"batch": 12, "block": 64, "vocab": 65},
}


def _model(workload, nn, transformers=None):
    from benchmarks.train import _cnn, _mlp

    if workload == "mlp":
        return _mlp(nn)
    if workload == "cnn":
        return _cnn(nn)
    kw = {"vocab_size": 65, "n_positions": 64, "n_embd": 128, "n_layer": 4, "n_head": 4, "resid_pdrop": 0.0,
          "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    if transformers is not None:
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw))
    from neural_arch.models import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**kw))


def _data(workload, share):
    rng = np.random.default_rng(0)
    w = WORKLOADS[workload]
    if workload == "gpt":
        return rng.integers(0, 65, (share, 64)), rng.integers(0, 65, (share, 64))
    return rng.standard_normal((share, *w["x"])).astype(np.float32), rng.integers(0, 10, share)


def _ours(args):
    import neural_arch as na
    import neural_arch.distributed as dist
    import neural_arch.nn.functional as F
    from neural_arch import nn, optim
    from neural_arch.backend.comm import launched_by_mpi

    world = 1
    if launched_by_mpi():
        dist.init_process_group("mpi")
        world = dist.get_world_size()
    na.manual_seed(0)
    model = _model(args.workload, nn)
    ddp = dist.DistributedDataParallel(model) if world > 1 else model
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x, y = _data(args.workload, WORKLOADS[args.workload]["batch"] // world)
    x, y = na.tensor(x), na.tensor(y)

    def step():
        opt.zero_grad()
        out = ddp(x)
        logits = out.logits.reshape(-1, 65) if args.workload == "gpt" else out
        F.cross_entropy(logits, y.reshape(-1)).backward()
        opt.step()

    def allreduce(mb):
        buf = np.ones(int(mb * 2**18), dtype=np.float32)
        return lambda: dist.communicator().allreduce(buf, "sum", check=False).wait()

    waits = []
    times = _time(step, args, on_step=lambda: waits.append(getattr(ddp, "last_wait_s", 0.0)))
    grad_mb = sum(p.data.nbytes for p in model.parameters()) / 2**20
    result = {"step_s": times, "wait_s": waits[-len(times):], "grad_mb": grad_mb}
    if world > 1:
        result["allreduce_s"] = {str(mb): _median_call(allreduce(mb), dist.barrier) for mb in SIZES_MB}
        dist.destroy_process_group()
    return result if dist.get_rank() == 0 or world == 1 else None


def _torch(args):
    import torch
    import torch.distributed as tdist
    import transformers

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(args.threads)
    if world > 1:
        tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['MASTER_PORT']}",
                                 rank=int(os.environ["RANK"]), world_size=world)
    torch.manual_seed(0)
    model = _model(args.workload, torch.nn, transformers if args.workload == "gpt" else None)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = _data(args.workload, WORKLOADS[args.workload]["batch"] // world)
    x, y = torch.tensor(x), torch.tensor(y)

    def step():
        opt.zero_grad()
        out = ddp(x)
        logits = out.logits.reshape(-1, 65) if args.workload == "gpt" else out
        torch.nn.functional.cross_entropy(logits, y.reshape(-1)).backward()
        opt.step()

    def allreduce(mb):
        buf = torch.ones(int(mb * 2**18))
        return lambda: tdist.all_reduce(buf)

    times = _time(step, args)
    result = {"step_s": times, "grad_mb": sum(p.numel() * 4 for p in model.parameters()) / 2**20}
    if world > 1:
        result["allreduce_s"] = {str(mb): _median_call(allreduce(mb), tdist.barrier) for mb in SIZES_MB}
        rank = tdist.get_rank()
        tdist.destroy_process_group()
        return result if rank == 0 else None
    return result


def _time(step, args, on_step=None) -> list:
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if on_step is not None:
            on_step()
    return times


def _median_call(fn, barrier, calls: int = 10) -> float:
    barrier()
    fn()
    times = []
    for _ in range(calls):
        barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed_rank")
    parser.add_argument("--framework", choices=("ours", "torch"), required=True)
    parser.add_argument("--workload", choices=tuple(WORKLOADS), required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch's intra-op threads")
    args = parser.parse_args()
    result = _ours(args) if args.framework == "ours" else _torch(args)
    if result is not None:
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
