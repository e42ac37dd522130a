"""A cost model of a data-parallel step, calibrated here, projected to clusters. A PROJECTION, not a measurement.

    python -m benchmarks.distributed_projection            # calibrates (mpiexec at 2, 3, 4 ranks), measures, projects
    python -m benchmarks.distributed_projection --quick    # smoke run: tiny messages, few steps (figures meaningless)

Model of one step on N ranks, each with a fixed share of the batch (weak scaling):

    t_step(N)  = t_compute + t_exposed
    t_ring(N)  = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency          (ring allreduce of the gradients)
    t_exposed  = max(t_ring(N) - t_backward, t_ring_of_last_bucket(N))        (the rest hides behind backward)
    throughput = N * batch_per_rank / t_step(N);   efficiency = t_compute / t_step(N)

Calibration on this machine: allreduce times of 0.25-16 MiB at 2, 3 and 4 ranks are fitted with
t = a + b * bytes per N, giving the per-step software latency a / (2 (N-1)) that MPI adds (used as the
latency floor) and the local bandwidth. ``t_compute`` and ``t_backward`` are measured from our own
steps of the 6-layer GPT and ResNet-50 at the per-rank batch, in this process with this machine's threads
(so a "rank" of the projection is a node like this one). Projected: 8 to 256 ranks over links of
10, 25 and 100 Gb/s, with ``--link-latency-us`` (default 10 us) added per ring step for the network.

What would have to be true on a real cluster for these numbers to hold: MPI reaches the link's bandwidth
for large messages (RDMA or well-tuned TCP) and uses a ring (or equally bandwidth-optimal) allreduce;
non-blocking allreduces progress while backward computes (Open MPI without a progress thread advances
them only inside MPI calls, i.e. at our gradient hooks, so the overlap is partial); every rank computes
as fast as the one measured here (no straggler, no memory-bandwidth contention between ranks sharing a
node); and the per-rank batch stays fixed as N grows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUCKET_MB = 25  # DistributedDataParallel's default bucket_cap_mb
WORKLOADS = {
    "GPT 6L 384w 6h, block 256, batch 16/rank": "gpt6",
    "ResNet-50 224x224, batch 8/rank": "resnet50",
}


# -- calibration: allreduce times at 2-4 ranks -----------------------------------------------------------
def _calibrate_rank(sizes_mb, calls):
    import neural_arch.distributed as dist

    dist.init_process_group("mpi")
    comm = dist.communicator()
    out = {}
    for mb in sizes_mb:
        buf = np.ones(max(1, int(mb * 2**18)), dtype=np.float32)
        comm.allreduce(buf, "sum", check=False).wait()
        times = []
        for _ in range(calls):
            comm.barrier().wait()
            t0 = time.perf_counter()
            comm.allreduce(buf, "sum", check=False).wait()
            times.append(time.perf_counter() - t0)
        out[str(mb)] = statistics.median(times)
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(out), flush=True)
    dist.destroy_process_group()


def calibrate(sizes_mb, calls) -> dict:
    """{N: (latency per ring step in s, bandwidth in bytes/s)} fitted from allreduces at N = 2, 3, 4."""
    from neural_arch.distributed.launch import mpiexec_command

    fits = {}
    saved = dict(os.environ)
    os.environ["NEURAL_ARCH_NUM_THREADS"] = "1"  # for the ranks only (mpiexec -x forwards what is set here)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    try:
        commands = {n: mpiexec_command(n) for n in (2, 3, 4)}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for n, (prefix, env) in commands.items():
        cmd = prefix + [sys.executable, "-m", "benchmarks.distributed_projection", "--calibrate-rank",
                        "--sizes", ",".join(map(str, sizes_mb)), "--calls", str(calls)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        times = json.loads(line[7:])
        nbytes = np.array([float(k) * 2**20 for k in times])
        secs = np.array(list(times.values()))
        b, a = np.polyfit(nbytes, secs, 1)
        latency = max(a, 0.0) / (2 * (n - 1))
        bandwidth = 2 * (n - 1) / n / b if b > 0 else float("inf")
        fits[n] = (latency, bandwidth, times)
    return fits


# -- compute: our step, forward and backward, at the per-rank batch --------------------------------------
def measure_compute(name, steps):
    import neural_arch as na
    import neural_arch.nn.functional as F
    from neural_arch import optim
    from neural_arch.models import GPT2Config, GPT2LMHeadModel, resnet50

    rng = np.random.default_rng(0)
    if name == "gpt6":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=65, n_positions=256, n_embd=384, n_layer=6, n_head=6,
                                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
        x, y = na.tensor(rng.integers(0, 65, (16, 256))), na.tensor(rng.integers(0, 65, (16 * 256,)))

        def forward():
            return F.cross_entropy(model(x).logits.reshape(-1, 65), y)
    else:
        model = resnet50()
        x, y = na.tensor(rng.standard_normal((8, 3, 224, 224)).astype(np.float32)), na.tensor(rng.integers(0, 1000, 8))

        def forward():
            return F.cross_entropy(model(x), y)
    opt = optim.AdamW(model.parameters(), lr=1e-4)
    fwd, total = [], []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = forward()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i:  # the first step compiles kernels
            fwd.append(t1 - t0)
            total.append(t2 - t0)
    grad_bytes = sum(p.data.nbytes for p in model.parameters())
    step = statistics.median(total)
    batch = 16 if name == "gpt6" else 8
    return {"step_s": step, "backward_s": step - statistics.median(fwd), "grad_bytes": grad_bytes, "batch": batch}


# -- the projection ---------------------------------------------------------------------------------------
def ring_seconds(nbytes, n, bandwidth, latency):
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def project(compute, latency_floor, link_latency, ranks=(8, 16, 32, 64, 128, 256), links_gbps=(10, 25, 100)):
    rows = []
    for n in ranks:
        for gbps in links_gbps:
            bw = gbps * 1e9 / 8
            lat = latency_floor + link_latency
            t_ring = ring_seconds(compute["grad_bytes"], n, bw, lat)
            last = ring_seconds(min(compute["grad_bytes"], BUCKET_MB * 2**20), n, bw, lat)
            exposed = max(t_ring - compute["backward_s"], last)
            step = compute["step_s"] + exposed
            rows.append((n, gbps, t_ring, exposed, step, n * compute["batch"] / step, compute["step_s"] / step))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed_projection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="0.25,1,4,16", help="allreduce sizes in MiB for the calibration")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3, help="timed compute steps per model")
    parser.add_argument("--link-latency-us", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: small messages, one step, GPT only")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    if args.calibrate_rank:
        _calibrate_rank(sizes, args.calls)
        return
    if args.quick:
        sizes, args.calls, args.steps = [0.0625, 0.25], 3, 1
    fits = calibrate(sizes, args.calls)
    print("PROJECTION (a cost model calibrated on this machine, not a measurement on a cluster)\n")
    print("| calibration | latency per ring step | local bandwidth | measured allreduce times |\n|---|---|---|---|")
    for n, (lat, bw, times) in fits.items():
        measured = ", ".join(f"{k} MiB {v * 1e3:.2f} ms" for k, v in times.items())
        print(f"| {n} ranks | {lat * 1e6:.1f} us | {bw / 1e9:.2f} GB/s | {measured} |")
    latency_floor = statistics.median(lat for lat, _, _ in fits.values())
    for label, name in WORKLOADS.items():
        if args.quick and name != "gpt6":
            continue
        compute = measure_compute(name, args.steps)
        print(f"\n### {label}: step {compute['step_s']:.3f} s (backward + optimizer {compute['backward_s']:.3f} s), "
              f"{compute['grad_bytes'] / 2**20:.1f} MiB of float32 gradients\n")
        print("| ranks | link | ring allreduce | exposed after backward | step | samples/s | scaling efficiency |\n"
              "|---|---|---|---|---|---|---|")
        for n, gbps, t_ring, exposed, step, rate, eff in project(compute, latency_floor, args.link_latency_us * 1e-6):
            print(f"| {n} | {gbps} Gb/s | {t_ring * 1e3:.1f} ms | {exposed * 1e3:.1f} ms | {step:.3f} s | {rate:.1f} "
                  f"| {100 * eff:.1f}% |")


if __name__ == "__main__":
    main()
