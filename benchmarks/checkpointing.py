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
    python -c "from benchmarks.checkpointing import phases; print(phases())"   # where the time goes

``phases`` is ours alone, in one process: the same model and batch, a step with checkpointing and one
without alternating, each split into forward, backward and optimizer, in wall time and in process CPU
time (all threads, user + system), with the page faults. CPU time is the work, wall time the work over
the cores: on a loaded machine only the CPU columns mean something.
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


PHASES = ("forward", "backward", "optimizer", "step")


def phases(rounds: int = 5, cfg: tuple = (6, 384, 6, 256, 16)) -> str:
    """Checkpointing against not, per phase of our step (see the module doc), medians of ``rounds``
    alternated steps after one of each; a Markdown table."""
    import resource  # noqa: PLC0415
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    import neural_arch as na  # noqa: PLC0415
    from neural_arch.models import GPT2Config, GPT2LMHeadModel  # noqa: PLC0415

    n_layer, n_embd, n_head, block, batch = cfg
    vocab = 65
    na.manual_seed(0)
    m = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=block, n_embd=n_embd, n_layer=n_layer,
                                   n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).train()
    opt = na.optim.AdamW(m.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    ids, tgt = (na.tensor(rng.integers(0, vocab, (batch, block))) for _ in range(2))

    def mark():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return np.array([time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_minflt])

    def step(ckpt):
        (m.gradient_checkpointing_enable if ckpt else m.gradient_checkpointing_disable)()
        t0 = mark()
        opt.zero_grad()
        loss = na.nn.functional.cross_entropy(m(ids).logits.reshape(-1, vocab), tgt.reshape(-1))
        t1 = mark()
        loss.backward()
        t2 = mark()
        opt.step()
        t3 = mark()
        return np.array([t1 - t0, t2 - t1, t3 - t2, t3 - t0])  # (phase, [wall, cpu, faults])

    step(False), step(True)
    got = {False: [], True: []}
    for _ in range(rounds):
        for ckpt in (False, True):
            got[ckpt].append(step(ckpt))
    med = {ckpt: np.median(got[ckpt], axis=0) for ckpt in got}
    lines = ["| GPT {}L {}w {}h, block {}, batch {} | wall, plain | wall, checkpointing | CPU, plain | "
             "CPU, checkpointing | page faults, plain / checkpointing |".format(*cfg), "|---|---|---|---|---|---|"]
    for i, name in enumerate(PHASES):
        p, c = med[False][i], med[True][i]
        lines.append(f"| {name} | {p[0]:.3f} s | {c[0]:.3f} s | {p[1]:.3f} s | {c[1]:.3f} s "
                     f"| {p[2]:.0f} / {c[2]:.0f} |")
    p, c = med[False][3], med[True][3]
    lines.append(f"| checkpointing's step, % of plain | | {100 * c[0] / p[0]:.1f} % | | {100 * c[1] / p[1]:.1f} % | |")
    lines.append(f"| forward, % of the plain step | {100 * med[False][0][0] / p[0]:.1f} % | | "
                 f"{100 * med[False][0][1] / p[1]:.1f} % | | |")
    return "\n".join(lines)
