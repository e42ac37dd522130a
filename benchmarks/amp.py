"""Autocast suite: the 6-layer GPT training step under bf16 autocast against our float32 step, with
torch's CPU autocast bf16 step (transformers' GPT-2, same shape) alongside.

Two tables' worth of rows:

* time of one step (zero_grad, forward + loss under autocast, backward, AdamW step), the four
  contenders interleaved in one process (``harness.compare``);
* the memory a step adds, each framework and precision in its own subprocess, over three steps after
  one unmeasured step: the peak RSS growth with freed memory given back to the OS (glibc's fixed mmap
  threshold and our allocation policy off, as ``benchmarks/checkpointing.py``: with the policy on, RSS
  keeps what earlier steps freed and the growth reads low), and for ours also the peak growth of the
  bytes that tracemalloc sees (NumPy reports every array buffer to it): what the step allocates,
  whatever malloc does with it.

Targets (issue 18): our bf16 step <= 1.1x our float32 step's time, and its memory <= 0.7x (judged on
the tracemalloc figure; the RSS one is printed alongside).

    python -m benchmarks amp
    python -c "from benchmarks import amp; amp.run(rounds=2, cfg=(1, 32, 2, 16, 2))"   # a smoke run
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks.harness import Result, compare

GPT_6L = (6, 384, 6, 256, 16)  # n_layer, n_embd, n_head, block, batch
VOCAB = 65


def _ours(cfg, precision):
    import neural_arch as na
    from neural_arch.models import GPT2Config, GPT2LMHeadModel

    n_layer, n_embd, n_head, block, batch = cfg
    na.manual_seed(0)
    m = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=block, n_embd=n_embd, n_layer=n_layer,
                                   n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).train()
    opt = na.optim.AdamW(m.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    a, b = na.tensor(rng.integers(0, VOCAB, (batch, block))), na.tensor(rng.integers(0, VOCAB, (batch, block)))
    F = na.nn.functional
    enabled = precision == "bf16"

    def step():
        opt.zero_grad()
        with na.autocast("cpu", dtype=na.bfloat16, enabled=enabled):
            loss = F.cross_entropy(m(a).logits.reshape(-1, VOCAB), b.reshape(-1))
        loss.backward()
        opt.step()

    return step


def _torch(cfg, precision):
    import torch
    import transformers

    n_layer, n_embd, n_head, block, batch = cfg
    torch.manual_seed(0)
    m = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=block, n_embd=n_embd, n_layer=n_layer, n_head=n_head, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0)).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.integers(0, VOCAB, (batch, block))), torch.tensor(rng.integers(0, VOCAB, (batch, block)))
    F = torch.nn.functional
    enabled = precision == "bf16"

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            loss = F.cross_entropy(m(a).logits.reshape(-1, VOCAB), b.reshape(-1))
        loss.backward()
        opt.step()

    return step


CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
which, precision, mode, cfg = sys.argv[2], sys.argv[3], sys.argv[4], tuple(map(int, sys.argv[5:10]))
if mode == "tracemalloc":  # from the start, so that what the step frees is subtracted too
    import tracemalloc
    tracemalloc.start()
from benchmarks import amp
step = (amp._ours if which == "neural-arch" else amp._torch)(cfg, precision)
def status_kb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
step()  # the first step: optimizer state and lazy initialisation, not measured
gc.collect()
if mode == "tracemalloc":
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
else:
    base = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark (VmHWM) to the current RSS
        fh.write("5")
for _ in range(3):
    step()
if mode == "tracemalloc":
    grown = (tracemalloc.get_traced_memory()[1] - base) / 2**20
else:
    grown = (status_kb("VmHWM") - base) / 1024
print(json.dumps({"step_mb": grown}))
"""

# As benchmarks/checkpointing.py: freed memory goes back to the OS (glibc's fixed mmap threshold, our
# allocation policy off), so that RSS growth is what a step needs, not what malloc kept from before.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "NEURAL_ARCH_KEEP_MEMORY": "0"}


def step_memory(which: str, precision: str, cfg: tuple, mode: str = "rss") -> float:
    """MB a step adds, over three steps in a fresh process: ``mode="rss"``, peak RSS growth with freed
    memory given back; ``mode="tracemalloc"``, the peak growth of the bytes Python and NumPy hold
    (NumPy reports its array buffers to tracemalloc; torch does not, so this mode is ours only)."""
    root = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", CHILD, root, which, precision, mode, *map(str, cfg)],
                         capture_output=True, text=True, check=True, env={**os.environ, **MEMORY_ENV})
    return json.loads(out.stdout.strip().splitlines()[-1])["step_mb"]


def run(rounds: int = 10, cfg: tuple = GPT_6L):
    shape = f"GPT {cfg[0]}L {cfg[1]}w, block {cfg[3]}, batch {cfg[4]}"
    contenders = {"neural-arch": _ours(cfg, "bf16"), "torch": _torch(cfg, "bf16"),
                  "neural-arch fp32": _ours(cfg, "fp32"), "torch fp32": _torch(cfg, "fp32")}
    timing = compare(f"{shape}: training step, bf16 autocast (fp32 alongside)", contenders, rounds=rounds, warmup=2)
    memory = Result(f"{shape}: peak RSS a step adds, freed memory given back, bf16 autocast (fp32 alongside)",
                    unit="MB")
    for who, (framework, precision) in {"neural-arch": ("neural-arch", "bf16"), "torch": ("torch", "bf16"),
                                        "neural-arch fp32": ("neural-arch", "fp32"),
                                        "torch fp32": ("torch", "fp32")}.items():
        memory.times[who] = [step_memory(framework, precision, cfg)]
    traced = Result(f"{shape}: peak bytes a step allocates (tracemalloc), bf16 autocast (fp32 alongside)",
                    unit="MB")
    for who, precision in {"neural-arch": "bf16", "neural-arch fp32": "fp32"}.items():
        traced.times[who] = [step_memory("neural-arch", precision, cfg, mode="tracemalloc")]
    t_ratio = timing.median("neural-arch") / timing.median("neural-arch fp32")
    m_ratio = memory.median("neural-arch") / max(memory.median("neural-arch fp32"), 1e-9)
    a_ratio = traced.median("neural-arch") / max(traced.median("neural-arch fp32"), 1e-9)
    t_torch = timing.median("torch") / timing.median("torch fp32")
    m_torch = memory.median("torch") / max(memory.median("torch fp32"), 1e-9)
    print(f"  ours bf16 / ours fp32: time {t_ratio:.2f} (target <= 1.1), memory (RSS) {m_ratio:.2f}, "
          f"memory (tracemalloc) {a_ratio:.2f} (target <= 0.7); torch bf16 / torch fp32: time {t_torch:.2f}, "
          f"memory (RSS) {m_torch:.2f}", file=sys.stderr)
    return [timing, memory, traced]


def profile(rounds: int = 3, cfg: tuple = GPT_6L, top: int = 25, clock=None) -> str:
    """Where the bf16 step's extra time goes, ours: the float32 and the bf16 autocast step alternated in
    one process, ``rounds`` of each after one unmeasured, timed per op and phase (``op_timers``:
    exclusive wall time, so the rows add up to the time in ops; "rest" is the engine's bookkeeping and
    the optimizer). A Markdown table of the ``top`` rows by the bf16 - fp32 difference, per step.
    ``clock=time.thread_time``: the calling thread's CPU time instead of wall time (with two threads, an
    op that our helper threads share shows about half its one-thread time; one they do not, all of it)."""
    import time  # noqa: PLC0415

    clock = clock or time.perf_counter

    from benchmarks.op_timers import OpTimers  # noqa: PLC0415

    steps = {p: _ours(cfg, p) for p in ("fp32", "bf16")}
    for f in steps.values():
        f()
    timers, totals = {p: OpTimers(clock) for p in steps}, {p: 0.0 for p in steps}
    for _ in range(rounds):
        for p, f in steps.items():  # alternated: a slow phase of the machine touches both alike
            with timers[p]:
                t0 = clock()
                f()
                totals[p] += clock() - t0
    per = {p: {(op, ph): 1e3 * s / rounds for op, ph, s, _ in timers[p].rows()} for p in steps}
    calls = {p: {(op, ph): n // rounds for op, ph, _, n in timers[p].rows()} for p in steps}
    keys = sorted(set(per["fp32"]) | set(per["bf16"]), key=lambda k: per["fp32"].get(k, 0) - per["bf16"].get(k, 0))
    lines = [f"| op, phase (GPT {cfg[0]}L {cfg[1]}w, block {cfg[3]}, batch {cfg[4]}) | fp32 ms/step | calls | "
             "bf16 ms/step | calls | bf16 - fp32 |", "|---|---|---|---|---|---|"]
    for op, ph in keys[:top]:
        f, b = per["fp32"].get((op, ph), 0.0), per["bf16"].get((op, ph), 0.0)
        lines.append(f"| {op} {ph} | {f:.1f} | {calls['fp32'].get((op, ph), 0)} | {b:.1f} | "
                     f"{calls['bf16'].get((op, ph), 0)} | {b - f:+.1f} |")
    ops = {p: sum(per[p].values()) for p in steps}
    step = {p: 1e3 * totals[p] / rounds for p in steps}
    lines.append(f"| all ops | {ops['fp32']:.1f} | | {ops['bf16']:.1f} | | {ops['bf16'] - ops['fp32']:+.1f} |")
    rest = {p: step[p] - ops[p] for p in steps}
    lines.append(f"| rest (engine, optimizer) | {rest['fp32']:.1f} | | {rest['bf16']:.1f} | "
                 f"| {rest['bf16'] - rest['fp32']:+.1f} |")
    lines.append(f"| step | {step['fp32']:.1f} | | {step['bf16']:.1f} | "
                 f"| bf16 / fp32 = {step['bf16'] / step['fp32']:.2f} |")
    return "\n".join(lines)
