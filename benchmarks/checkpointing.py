"""Checkpointing suite: a GPT training step with activation checkpointing on every block against without,
in neural-arch (``gradient_checkpointing_enable()``) and in torch (transformers' GPT-2 with
``torch.utils.checkpoint``, use_reentrant=False), same shapes, same run.

Issue 18's targets (ours): with checkpointing the memory a step adds is at most 0.4x, and the step time
at most 1.35x, of the step without it.

Each configuration (framework x checkpointing on/off) runs in fresh subprocesses, because peak RSS is
per process. Memory: one unmeasured step first (optimizer state, lazy initialisation), then the peak
growth of RSS over two steps above the memory held before them. So that this growth is what a step
needs, and not what malloc kept from the first step, the memory processes give freed memory back: glibc
with a fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``, every block from 128 KiB its own mapping) and
our allocation policy off (``NEURAL_ARCH_KEEP_MEMORY=0``, ``backend/memory.py``); the same for torch.
Time: another process with the usual settings, the median of ``steps`` steps after one unmeasured.
The configurations run one after another, ``rounds`` times over, interleaved; the table shows medians,
and its last rows checkpointing's memory and time as a percentage of the plain step, per framework.

    python -m benchmarks checkpointing                      # the 6-layer GPT of the issue
    python -m benchmarks checkpointing --rounds 1           # one pass (memory does not depend on load)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.harness import Result

CHILD = r"""
import json, sys, time, gc
import numpy as np
which, mode, ckpt, n_layer, n_embd, n_head, block, batch, steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:10])
vocab = 65
def status_kb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
kw = dict(vocab_size=vocab, n_positions=block, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
rng = np.random.default_rng(0)
ids = rng.integers(0, vocab, (batch, block)); tgt = rng.integers(0, vocab, (batch, block))
if which == "torch":
    import torch, transformers
    torch.manual_seed(0)
    m = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw, use_cache=False)).train()
    if ckpt:
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    a, b = torch.tensor(ids), torch.tensor(tgt)
    F = torch.nn.functional
else:
    import neural_arch as na
    from neural_arch.models import GPT2Config, GPT2LMHeadModel
    na.manual_seed(0)
    m = GPT2LMHeadModel(GPT2Config(**kw)).train()
    if ckpt:
        m.gradient_checkpointing_enable()
    opt = na.optim.AdamW(m.parameters(), lr=1e-3)
    a, b = na.tensor(ids), na.tensor(tgt)
    F = na.nn.functional
def step():
    opt.zero_grad()
    loss = F.cross_entropy(m(a).logits.reshape(-1, vocab), b.reshape(-1))
    loss.backward()
    opt.step()
step()  # optimizer state and lazy initialisation: not the step's
if mode == "memory":
    gc.collect()
    base = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark (VmHWM) to the current RSS
        fh.write("5")
    for _ in range(2):
        step()
    print(json.dumps({"step_mb": (status_kb("VmHWM") - base) / 1024}))
else:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"step_s": sorted(times)[len(times) // 2]}))
"""

MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "NEURAL_ARCH_KEEP_MEMORY": "0"}


def measure(which: str, ckpt: bool, cfg: tuple, steps: int, modes=("memory", "time")) -> dict:
    """``{"step_mb": ..., "step_s": ...}`` of one configuration: a memory process, then a time process."""
    got = {}
    for mode in modes:
        env = {**os.environ, **MEMORY_ENV} if mode == "memory" else None
        out = subprocess.run([sys.executable, "-c", CHILD, which, mode, str(int(ckpt)), *map(str, cfg), str(steps)],
                             capture_output=True, text=True, check=True, env=env)
        got.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return got


def run(rounds: int = 3, cfg: tuple = (6, 384, 6, 256, 16), steps: int = 5, modes=("memory", "time")):
    """``cfg``: (layers, width, heads, block, batch); ``modes``: ("memory",) alone skips the timing (memory
    figures do not depend on the machine's load). Returns the suite's rows (see the module doc)."""
    got = {(w, c): [] for w in ("neural-arch", "torch") for c in (False, True)}
    for _ in range(rounds):
        for key in got:  # interleaved: a slow phase of the machine touches every configuration alike
            got[key].append(measure(*key, cfg, steps, modes))
            print(f"  {key}: {got[key][-1]}", file=sys.stderr)
    name = "GPT {}L {}w {}h, block {}, batch {}".format(*cfg)

    def row(what, key, ckpt, unit):
        return Result(f"{name}: {what}", {w: [r[key] for r in got[(w, ckpt)]] for w in ("neural-arch", "torch")},
                      unit=unit)

    def percent(what, key):
        times = {}
        for w in ("neural-arch", "torch"):
            plain = sorted(r[key] for r in got[(w, False)])[rounds // 2]
            times[w] = [100.0 * r[key] / plain for r in got[(w, True)]]
        return Result(f"{name}: {what}", times, unit="%")

    rows = []
    if "memory" in modes:
        rows += [row("memory a step adds, plain", "step_mb", False, "MB"),
                 row("memory a step adds, checkpointing every block", "step_mb", True, "MB"),
                 percent("checkpointing's memory, % of plain (target <= 40)", "step_mb")]
    if "time" in modes:
        rows += [row("step time, plain", "step_s", False, "s"),
                 row("step time, checkpointing every block", "step_s", True, "s"),
                 percent("checkpointing's step time, % of plain (target <= 135)", "step_s")]
    return rows
