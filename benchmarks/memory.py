"""Memory suite: peak resident memory of a GPT training step, ours vs torch.

Each framework runs in its own subprocess (peak RSS is per process). We
report the peak growth during three training steps over the memory held
just before them: that is what the step itself needs: activations kept for
backward, gradients, temporaries. One step runs first, unmeasured, so that
one-time costs are not counted as the step's: optimizer state, and lazy
initialisation (for us, importing numba and loading the cached kernels,
about 190 MB; for torch, its CPU kernels' set-up). Those first-step figures
are printed as well, and so is each process's whole peak.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.harness import Result

CHILD = r"""
import json, sys
import numpy as np
which, n_layer, n_embd, n_head, block, batch = sys.argv[1], *map(int, sys.argv[2:7])
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
    m = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw)).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    a, b = torch.tensor(ids), torch.tensor(tgt)
    F = torch.nn.functional
else:
    import neural_arch as na
    from neural_arch.models import GPT2Config, GPT2LMHeadModel
    m = GPT2LMHeadModel(GPT2Config(**kw)).train()
    opt = na.optim.AdamW(m.parameters(), lr=1e-3)
    a, b = na.tensor(ids), na.tensor(tgt)
    F = na.nn.functional
import gc
def steps(n):
    gc.collect()
    base = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark (VmHWM) to the current RSS
        fh.write("5")
    for _ in range(n):
        opt.zero_grad()
        loss = F.cross_entropy(m(a).logits.reshape(-1, vocab), b.reshape(-1))
        loss.backward()
        opt.step()
    return base, status_kb("VmHWM")
base0, peak0 = steps(1)  # the first step: optimizer state and lazy initialisation
base, peak = steps(3)
print(json.dumps({"first_step_mb": (peak0 - base0) / 1024, "step_mb": (peak - base) / 1024,
                  "process_peak_mb": max(peak0, peak) / 1024}))
"""


def measure(which: str, cfg: tuple) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, *map(str, cfg)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(rounds: int = 1):
    results = []
    for name, cfg in [("char GPT 4L 128w, block 64, batch 12", (4, 128, 4, 64, 12)),
                      ("GPT 6L 384w, block 256, batch 16", (6, 384, 6, 256, 16))]:
        ours, theirs = measure("neural-arch", cfg), measure("torch", cfg)
        print(f"  {name}: neural-arch {ours}, torch {theirs}", file=sys.stderr)
        for key, what in (("step_mb", "peak memory of a step"), ("first_step_mb", "the first step"),
                          ("process_peak_mb", "whole process peak")):
            results.append(Result(f"{name}: {what}", {"neural-arch": [ours[key]], "torch": [theirs[key]]}, unit="MB"))
    return results
