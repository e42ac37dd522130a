"""nanoGPT's own recipe for Tiny Shakespeare on the CPU, written out in torch: the reference for the
val loss of issue #5 (nanoGPT's README reports 1.88 for this config).

    python examples/nanogpt_torch_reference.py SEED [--untied] [--beta2 B] [--no-clip] [--data PATH]

torch is a test-time dependency (``pip install torch==2.13.0``); nothing in neural_arch is used.
The model is nanoGPT's ``model.py`` (pre-LN blocks, LayerNorm and Linear without biases, exact GELU,
tied input/output embeddings, N(0, 0.02) init with the residual projections scaled by
1/sqrt(2 n_layer)) and the loop its ``train.py`` with ``config/train_shakespeare_char.py`` and the
README's CPU overrides: 4 layers, 4 heads, 128 wide, block 64, batch 12, 2000 iterations, AdamW
(betas 0.9, 0.99; weight decay 0.1 on the >= 2-D parameters), lr 1e-3 with 100 warmup steps then
cosine to 1e-4, gradient clipping 1.0, dropout 0, random training windows. It prints nanoGPT's
estimate (20 batches of 12 random validation windows, as ``eval_iters=20``) and the loss over
every validation window.

Measured (2026-11-30, this machine, seeds 1-6): see BENCHMARKS.md, Tiny Shakespeare.
"""

import argparse
import gzip
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): a few iterations, a slice of the validation split
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("seed", type=int, **({"nargs": "?", "default": 1} if SMOKE else {}))
parser.add_argument("--untied", action="store_true",
                    help="give the output head its own matrix instead of sharing the token embedding (nanoGPT ties them)")
parser.add_argument("--beta2", type=float, default=0.99, help="AdamW's beta2 (nanoGPT's char config: 0.99)")
parser.add_argument("--no-clip", action="store_true", help="no gradient clipping (nanoGPT clips at norm 1.0)")
parser.add_argument(
    "--data", default=str(Path(__file__).resolve().parents[1] / "src/neural_arch/data/tinyshakespeare.txt.gz")
)
args = parser.parse_args()
torch.manual_seed(args.seed)
with gzip.open(args.data, "rt") as fh:
    text = fh.read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = np.array([stoi[c] for c in text], dtype=np.uint16)
n = len(data)
train_data, val_data = data[: int(n * 0.9)], data[int(n * 0.9) :]
V, L, H, C, T, B, ITERS = len(chars), 4, 4, 128, 64, 12, 2000
if SMOKE:
    val_data, ITERS = val_data[:2000], 3


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C, bias=False)
        self.c_proj = nn.Linear(C, C, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C, bias=False)
        self.c_proj = nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = LayerNorm(C), Attn(), LayerNorm(C), MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = LayerNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False)
        if not args.untied:
            self.wte.weight = self.lm_head.weight
        self.apply(self._init)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * L))

    def _init(self, m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


def get_batch(d):
    ix = torch.randint(len(d) - T, (B,))
    x = torch.stack([torch.from_numpy(d[i : i + T].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(d[i + 1 : i + 1 + T].astype(np.int64)) for i in ix])
    return x, y


def lr_at(it, lr=1e-3, min_lr=1e-4, warm=100, decay=2000):
    if it < warm:
        return lr * (it + 1) / (warm + 1)
    if it > decay:
        return min_lr
    r = (it - warm) / (decay - warm)
    return min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (lr - min_lr)


model = GPT()
params = [p for p in model.parameters()]
decay = [p for p in params if p.dim() >= 2]
nodecay = [p for p in params if p.dim() < 2]
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, args.beta2)
)


@torch.no_grad()
def estimate(d, iters=20):
    model.eval()
    out = torch.stack([model(*get_batch(d)) for _ in range(iters)]).mean().item()
    model.train()
    return out


@torch.no_grad()
def full_val():
    model.eval()
    starts = np.arange(0, len(val_data) - T)  # every window, as our trainer scores it
    tot, cnt = 0.0, 0
    for s0 in range(0, len(starts), 512):
        ix = starts[s0 : s0 + 512]
        x = torch.from_numpy(np.stack([val_data[i : i + T] for i in ix]).astype(np.int64))
        y = torch.from_numpy(np.stack([val_data[i + 1 : i + 1 + T] for i in ix]).astype(np.int64))
        tot += model(x, y).item() * len(ix)
        cnt += len(ix)
    model.train()
    return tot / cnt


t0 = time.time()
for it in range(ITERS):
    for g in opt.param_groups:
        g["lr"] = lr_at(it)
    loss = model(*get_batch(train_data))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if not args.no_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
wall = time.time() - t0
est = estimate(val_data)  # what nanoGPT logs at iteration 2000
print(
    f"seed {args.seed}: nanoGPT's estimate (20 x 12 windows) {est:.4f}; every validation window "
    f"{full_val():.4f}; {ITERS} iterations in {wall:.0f} s",
    flush=True,
)
