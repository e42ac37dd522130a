"""Distributed suite: data parallelism on one machine, ours (MPI) next to torch.distributed (gloo).

For the MLP, CNN and char-GPT training steps of benchmarks/train.py (same global batches):

* ``neural-arch`` : 2 ranks x 1 thread, DistributedDataParallel over MPI (mpiexec);
* ``torch``       : 2 ranks x 1 thread, torch's DistributedDataParallel on gloo (loopback TCP);
* ``neural-arch 1x2`` / ``torch 1x2``: one process with 2 threads and the whole batch;

and, per framework at 2 ranks, the allreduce time per MiB (0.25, 1, 4 and 16 MiB messages) and the share of
our step spent waiting for gradient allreduces after backward (what the overlap did not hide).

Processes cannot be interleaved call by call as the harness does in one process, so each configuration
runs as its own processes ``rounds`` times, the configurations alternating (round-robin), and each cell
is the median over rounds of that run's median step. Run it on a quiet machine:

    python -m benchmarks distributed                  # NEURAL_ARCH_BENCH_STEPS=20 timed steps per run
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Result

SIZES_MB = (0.25, 1, 4, 16)
ROOT = Path(__file__).resolve().parents[1]
LABELS = {"mlp": "MLP 784-100-10 AdamW, batch 128", "cnn": "CNN of configs/fashion_cnn.yaml, AdamW, batch 64",
          "gpt": "char GPT 4L 128w 4h, block 64, batch 12, AdamW"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(threads: int) -> dict:
    paths = [str(ROOT), str(ROOT / "src")] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), NEURAL_ARCH_NUM_THREADS=str(threads),
                OMP_NUM_THREADS=str(threads))


def _result(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result in:\n{out[-3000:]}")


def _rank_cmd(framework, workload, steps, threads=1):
    return [sys.executable, "-m", "benchmarks.distributed_rank", "--framework", framework, "--workload", workload,
            "--steps", str(steps), "--threads", str(threads)]


def run_ours(workload, steps, ranks):
    from neural_arch.distributed.launch import mpiexec_command

    threads = 1 if ranks > 1 else 2
    os.environ.update({k: v for k, v in _env(threads).items() if k in ("PYTHONPATH", "NEURAL_ARCH_NUM_THREADS")})
    cmd = _rank_cmd("ours", workload, steps)
    if ranks > 1:
        prefix, env = mpiexec_command(ranks)
        cmd = prefix + cmd
    else:
        env = _env(threads)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False)
    return _result(proc.stdout + proc.stderr)


def run_torch(workload, steps, ranks):
    threads = 1 if ranks > 1 else 2
    env = _env(threads)
    if ranks == 1:
        proc = subprocess.run(_rank_cmd("torch", workload, steps, threads), env=env, capture_output=True, text=True,
                              timeout=1800, cwd=ROOT, check=False)
        return _result(proc.stdout + proc.stderr)
    port = str(_free_port())
    procs = [subprocess.Popen(_rank_cmd("torch", workload, steps, threads), cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=dict(env, RANK=str(r), WORLD_SIZE=str(ranks), MASTER_PORT=port))
             for r in range(ranks)]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    return _result(outs[0])


def run(rounds: int = 3):
    steps = int(os.environ.get("NEURAL_ARCH_BENCH_STEPS", "20"))
    results, ours, theirs = [], [], []
    for workload in ("mlp", "cnn", "gpt"):
        runs = {"neural-arch": [], "torch": [], "neural-arch 1x2": [], "torch 1x2": []}
        for _ in range(rounds):
            runs["neural-arch"].append(run_ours(workload, steps, 2))
            runs["torch"].append(run_torch(workload, steps, 2))
            runs["neural-arch 1x2"].append(run_ours(workload, steps, 1))
            runs["torch 1x2"].append(run_torch(workload, steps, 1))
        step = Result(f"{LABELS[workload]}: step, 2 ranks x 1 thread (1x2: one process, 2 threads)")
        for who, rs in runs.items():
            step.times[who] = [statistics.median(r["step_s"]) for r in rs]
        results.append(step)
        share = Result(f"{LABELS[workload]}: waiting for allreduce after backward, % of our 2-rank step", unit="%")
        share.times["neural-arch"] = [100 * statistics.median(r["wait_s"]) / statistics.median(r["step_s"])
                                      for r in runs["neural-arch"]]
        results.append(share)
        mb = runs["neural-arch"][0]["grad_mb"]
        whole = Result(f"{LABELS[workload]}: one allreduce of the {mb:.2f} MiB of gradients, % of the 2-rank step",
                       unit="%")
        for who in ("neural-arch", "torch"):
            whole.times[who] = [100 * _interp(r["allreduce_s"], mb) / statistics.median(r["step_s"]) for r in runs[who]]
        results.append(whole)
        ours += runs["neural-arch"]
        theirs += runs["torch"]
    for size in SIZES_MB:
        per_mb = Result(f"allreduce of {size} MiB float32 at 2 ranks, time per MiB")
        per_mb.times["neural-arch"] = [r["allreduce_s"][str(size)] / size for r in ours]
        per_mb.times["torch"] = [r["allreduce_s"][str(size)] / size for r in theirs]
        results.append(per_mb)
    return results


def _interp(allreduce_s: dict, mb: float) -> float:
    """Allreduce seconds for ``mb`` MiB, linear between the measured sizes (the latency term below 1 MiB)."""
    points = sorted((float(k), v) for k, v in allreduce_s.items())
    if mb <= points[0][0]:
        return points[0][1]
    for (m0, t0), (m1, t1) in itertools.pairwise(points):
        if mb <= m1:
            return t0 + (t1 - t0) * (mb - m0) / (m1 - m0)
    m0, t0 = points[-2]
    m1, t1 = points[-1]
    return t1 + (t1 - t0) * (mb - m1) / (m1 - m0)
