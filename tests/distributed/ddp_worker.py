"""One MPI rank of the correctness checks (launched by test_ddp.py under mpiexec -n N).

Every rank trains each model on its share (B/N rows) of the same batches with
DistributedDataParallel, and beside it one un-parallelised replica on the whole
batch B (the reference), then compares parameters. Rank 0 writes the results,
with the collective-error checks, as JSON to ``argv[1]``.

Relative error of a parameter: max|ours - reference| / max|reference|; the figure reported
per check is the largest over parameters and ranks.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import neural_arch as na
import neural_arch.distributed as dist
import neural_arch.nn.functional as F
from neural_arch import nn, optim
from neural_arch.distributed.optim import ZeroRedundancyOptimizer
from neural_arch.errors import DTypeError, GradientError, ShapeError
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel

B, STEPS = 8, 3


def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def gpt():
    cfg = GPT2Config(vocab_size=16, n_positions=8, n_embd=16, n_layer=2, n_head=2, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    return GPT2LMHeadModel(cfg)


def batches(kind, dtype, seed):
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        if kind == "gpt":
            ids = rng.integers(0, 16, size=(B, 8))
            yield ids, rng.integers(0, 16, size=(B, 8))
        elif kind == "cnn":
            yield rng.standard_normal((B, 1, 6, 6)).astype(dtype), rng.integers(0, 3, size=B)
        else:
            yield rng.standard_normal((B, 6)).astype(dtype), rng.integers(0, 3, size=B)


def loss_of(model, kind, x, y):
    if kind == "gpt":
        logits = model(x).logits
        return F.cross_entropy(logits.reshape(-1, 16), na.tensor(y.reshape(-1)))
    return F.cross_entropy(model(na.tensor(x)), na.tensor(y))


def build(kind, dtype):
    na.manual_seed(0)
    model = {"mlp": mlp, "cnn": cnn, "gpt": gpt}[kind]()
    return model.double() if dtype == np.float64 else model


def make_optimizer(kind, params, adam, zero=False):
    # eps=1e-6: where a gradient is exactly zero in exact arithmetic (GPT-2's key bias: softmax ignores a shift
    # of every score in a row), AdamW's update is lr * g / eps, a gain of lr / eps on pure rounding noise; at
    # eps=1e-8 that gain (1e6) lifts float64's summation-order differences (1e-20 in the gradient, whole batch
    # vs the ranks' shares) to ~1e-12 of the parameter, the issue's bound, whatever the op's formula.
    adamw = {"lr": 1e-2, "weight_decay": 0.01, "eps": 1e-6}
    cls, kw = (optim.AdamW, adamw) if adam else (optim.SGD, {"lr": 0.1, "momentum": 0.9})
    return ZeroRedundancyOptimizer(params, cls, **kw) if zero else cls(params, **kw)


def reference_step(model, kind, x, y, n):
    """One process, whole batch. With BatchNorm the batch is split as the ranks split it (each rank
    normalises with its own batch statistics) and the running statistics follow share 0 (DDP broadcasts
    rank 0's buffers at every forward)."""
    if kind != "cnn":
        loss_of(model, kind, x, y).backward()
        return
    buffers = list(model.buffers())
    share = B // n
    total, after_first = None, None
    for r in range(n):
        part = loss_of(model, kind, x[r * share:(r + 1) * share], y[r * share:(r + 1) * share])
        total = part if total is None else total + part
        if r == 0:
            after_first = [b.data.copy() for b in buffers]
    (total / n).backward()
    for b, saved in zip(buffers, after_first):
        b.data[...] = saved


def run_check(kind, dtype, zero=False, accumulate=False):
    n, rank = dist.get_world_size(), dist.get_rank()
    ref, model = build(kind, dtype), build(kind, dtype)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.002)  # several buckets even for these
    # NOTE: Adam only in float64. Adam divides each gradient element by its own running magnitude, so where an
    # element's gradient is (nearly) zero, float32's summation-order noise (whole batch vs shares) becomes an
    # O(lr) difference in the update (measured 1e-4 relative after 3 steps on the GPT); in float64 it stays 1e-13.
    adam = (kind == "gpt" or zero) and dtype == np.float64
    ref_opt = make_optimizer(kind, ref.parameters(), adam)
    opt = make_optimizer(kind, model.parameters(), adam, zero)
    share = B // n
    for x, y in batches(kind, dtype, seed=1):
        ref_opt.zero_grad()
        reference_step(ref, kind, x, y, n)
        ref_opt.step()
        opt.zero_grad()
        xs, ys = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        if accumulate:  # two micro-batches: the first under no_sync, the second averages the sum
            half = share // 2
            with ddp.no_sync():
                (loss_of(ddp, kind, xs[:half], ys[:half]) * 0.5).backward()
            (loss_of(ddp, kind, xs[half:], ys[half:]) * 0.5).backward()
        else:
            loss_of(ddp, kind, xs, ys).backward()
        opt.step()
    err = max(np.abs(p.data - q.data).max() / np.abs(q.data).max() for p, q in zip(model.parameters(), ref.parameters()))
    if rank == 0:  # rank 0's running statistics are the ones that are broadcast and saved
        for b, c in zip(model.buffers(), ref.buffers()):
            if b.data.dtype.kind == "f":
                err = max(err, np.abs(b.data - c.data).max() / max(np.abs(c.data).max(), 1e-300))
            else:
                err = max(err, float(np.any(b.data != c.data)))
    result = {"rel": float(err)}
    if zero:
        result["state_bytes"] = opt.state_bytes()
        result["full_state_bytes"] = sum(v.nbytes for s in ref_opt.state.values() for v in s.values()
                                         if isinstance(v, np.ndarray))
        opt.consolidate_state_dict(to=0)
        # the full state, loaded on every rank, gives each rank back exactly its own shard
        full_state = dist.communicator().broadcast_object(opt.state_dict() if rank == 0 else None)
        fresh = make_optimizer(kind, model.parameters(), adam, zero=True)
        fresh.load_state_dict(full_state)
        result["reloaded_equal"] = all(
            np.array_equal(np.asarray(getattr(fresh.state[p][k], "data", fresh.state[p][k])),
                           np.asarray(getattr(opt.state[p][k], "data", opt.state[p][k])))
            for p in opt.state for k in opt.state[p]) and len(fresh.state) == len(opt.state) > 0
        if rank == 0:
            sd = opt.state_dict()
            theirs = ref_opt.state_dict()
            result["consolidated_rel"] = max(
                float(np.abs(np.asarray(sd["state"][i][k]) - theirs["state"][i][k].data).max())
                for i in theirs["state"] for k in theirs["state"][i] if k != "step")
            result["consolidated_entries"] = len(sd["state"])
    return result


def gather(result):
    everyone = dist.communicator().gather_object(result, dst=0)
    if everyone is None:
        return None
    merged = {"rel": max(r["rel"] for r in everyone)}
    if "state_bytes" in result:
        merged["state_bytes_per_rank"] = [r["state_bytes"] for r in everyone]
        merged["full_state_bytes"] = everyone[0]["full_state_bytes"]
        merged["consolidated_rel"] = everyone[0]["consolidated_rel"]
        merged["consolidated_entries"] = everyone[0]["consolidated_entries"]
        merged["reloaded_equal"] = all(r["reloaded_equal"] for r in everyone)
    return merged


def error_checks():
    """Mismatched collectives and unused parameters: the message each rank got (or 'no error')."""
    rank = dist.get_rank()
    out = {}
    for name, make in [("shape", lambda: na.zeros(rank + 2)),
                       ("dtype", lambda: na.zeros(3, dtype=np.float64 if rank else np.float32))]:
        try:
            dist.all_reduce(make())
            out[name] = "no error"
        except (ShapeError, DTypeError) as e:
            out[name] = f"{type(e).__name__}: {e}"
    na.manual_seed(0)
    branchy = nn.ModuleDict({"used": nn.Linear(3, 2), "unused": nn.Linear(3, 2)})
    strict = nn.parallel.DistributedDataParallel(branchy)
    try:
        strict.module["used"](na.ones(2, 3)).sum().backward()
        out["unused"] = "no error"
    except GradientError as e:
        out["unused"] = f"GradientError: {e}"
    na.manual_seed(0)
    branchy = nn.ModuleDict({"used": nn.Linear(3, 2), "unused": nn.Linear(3, 2)})
    lenient = nn.parallel.DistributedDataParallel(branchy, find_unused_parameters=True)
    lenient.module["used"](na.ones(2, 3) * (rank + 1)).sum().backward()
    n = dist.get_world_size()
    expected = np.full((2, 3), 2 * np.mean([r + 1 for r in range(n)]))  # d sum(W x) / dW over 2 rows of x
    out["find_unused_ok"] = bool(np.allclose(branchy["used"].weight.grad.numpy(), expected)
                                 and branchy["unused"].weight.grad is None)
    t = na.ones(4) * (rank + 1)
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    out["async_sum"] = t.numpy().tolist()
    return out


def main(path):
    dist.init_process_group("mpi")
    checks = {}
    for kind in ("mlp", "cnn", "gpt"):
        for dtype in (np.float64, np.float32):
            checks[f"{kind}_{np.dtype(dtype).name}"] = gather(run_check(kind, dtype))
    checks["mlp_float64_no_sync"] = gather(run_check("mlp", np.float64, accumulate=True))
    for kind in ("mlp", "gpt"):
        for dtype in (np.float64, np.float32):
            checks[f"zero_{kind}_{np.dtype(dtype).name}"] = gather(run_check(kind, dtype, zero=True))
    errors = dist.communicator().gather_object(error_checks(), dst=0)
    if dist.get_rank() == 0:
        with open(path, "w") as f:
            json.dump({"world_size": dist.get_world_size(), "checks": checks, "errors": errors}, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
