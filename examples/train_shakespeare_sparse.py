"""Mixture of experts and Mamba against the dense modern transformer on Tiny Shakespeare (characters).

    python examples/train_shakespeare_sparse.py --model modern      # the dense baseline (Llama layout)
    python examples/train_shakespeare_sparse.py --model mixtral     # 4 experts, top-2, same active parameters
    python examples/train_shakespeare_sparse.py --model mamba       # selective SSM, about the same size
    python examples/train_shakespeare_sparse.py --model mamba --iters 3 --eval-windows 8 --gen-tokens 8  # smoke
    NEURAL_ARCH_EXAMPLE_SMOKE=1 python examples/train_shakespeare_sparse.py --model mamba               # the same

The recipe is examples/train_shakespeare.py's (nanoGPT's CPU config: 4 layers,
128 wide, block 64, batch 12, 2000 iterations, AdamW 1e-3 with warmup and
cosine decay, betas (0.9, 0.99), weight decay 0.1, clipping 1.0).

- ``modern``: 4 query heads sharing 2 key/value heads, SwiGLU width 344 (GPT-2's MLP parameter count).
- ``mixtral``: the same attention; each MLP becomes ``--experts`` SwiGLU experts of width 344 / top_k,
  so a token uses as many MLP parameters as the dense model (``num_active_parameters``);
  the load-balancing loss enters with ``router_aux_loss_coef``.
- ``mamba``: ``--mamba-layers`` blocks (default 6, close to the modern model's parameter count), 128 wide,
  state 16, conv 4, expand 2.

Prints the val loss (every non-overlapping 64-character window of the validation split), the median time
per training step, training tokens/s, and greedy generation tokens/s (batch 1, 256 new tokens, KV cache
or recurrent state; the attention models slide a 64-token window as they were trained on).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import optim
from neural_arch.data import TinyShakespeare
from neural_arch.models.mamba import MambaConfig, MambaForCausalLM
from neural_arch.models.mixtral import MixtralConfig, MixtralForCausalLM
from neural_arch.models.modern import ModernConfig, ModernTransformer
from neural_arch.nn.utils import clip_grad_norm_


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["modern", "mixtral", "mamba"], default="mixtral")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--experts", type=int, default=4)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--aux-coef", type=float, default=0.01, help="mixtral: router_aux_loss_coef")
    p.add_argument("--mamba-layers", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-windows", type=int, default=0, help="validate on the first N windows (0: all)")
    p.add_argument("--gen-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args(argv)
    if os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE", "") not in ("", "0"):  # the test suite's size
        args.iters, args.warmup, args.eval_windows, args.gen_tokens = 3, 1, 8, 8
    return args


def build(args, vocab: int):
    C, dense_hidden = args.n_embd, int(8 * args.n_embd / 3 + 7) // 8 * 8
    common = dict(vocab_size=vocab, hidden_size=C, num_hidden_layers=args.n_layer, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=args.block_size, rms_norm_eps=1e-5,
                  bos_token_id=None, eos_token_id=None)
    if args.model == "modern":
        return ModernTransformer(ModernConfig(intermediate_size=dense_hidden, **common))
    if args.model == "mixtral":
        return MixtralForCausalLM(MixtralConfig(intermediate_size=dense_hidden // args.top_k,
                                                num_local_experts=args.experts, num_experts_per_tok=args.top_k,
                                                router_aux_loss_coef=args.aux_coef, rope_theta=10000.0, **common))
    return MambaForCausalLM(MambaConfig(vocab_size=vocab, hidden_size=C, num_hidden_layers=args.mamba_layers,
                                        state_size=16, conv_kernel=4, expand=2, bos_token_id=None,
                                        eos_token_id=None, pad_token_id=None))


def decay_groups(model, weight_decay: float) -> list:
    """AdamW groups as nanoGPT's: decay on the 2-D weights (and not Mamba's A_log), none on the rest."""
    named = {id(p): (n, p) for n, p in model.named_parameters()}.values()
    decay = [p for n, p in named if p.ndim >= 2 and not n.endswith("A_log")]
    ids = {id(p) for p in decay}
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": [p for _, p in named if id(p) not in ids], "weight_decay": 0.0}]


def lr_at(it: int, args) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay to min_lr at the last iteration."""
    if it < args.warmup:
        return args.lr * (it + 1) / (args.warmup + 1)
    ratio = (it - args.warmup) / max(1, args.iters - args.warmup)
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (args.lr - args.min_lr)


def loss_of(model, x, y, args):
    if args.model == "mixtral":
        out = model(x, use_cache=False, output_router_logits=True)
        ce = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), y.reshape(-1))
        return ce + out.aux_loss * args.aux_coef, ce
    logits = model(x, use_cache=False).logits
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    return ce, ce


def evaluate(model, val, args, batch: int = 256) -> float:
    n = (len(val.ids) - 1) // args.block_size
    if args.eval_windows:
        n = min(n, args.eval_windows)
    x = val.ids[: n * args.block_size].reshape(n, args.block_size)
    y = val.ids[1: n * args.block_size + 1].reshape(n, args.block_size)
    model.eval()
    total = 0.0
    with na.no_grad():
        for i in range(0, n, batch):
            logits = model(x[i:i + batch], use_cache=False).logits
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), na.tensor(y[i:i + batch].reshape(-1)),
                                     reduction="sum").item()
    model.train()
    return total / y.size


def main(argv=None) -> dict:
    args = parse_args(argv)
    na.manual_seed(args.seed)
    train, val = TinyShakespeare("train", args.block_size), TinyShakespeare("val", args.block_size)
    model = build(args, train.tokenizer.vocab_size)
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    active = model.num_active_parameters() if args.model == "mixtral" else total
    print(f"{args.model}: {total / 1e6:.3f}M parameters, {active / 1e6:.3f}M active per token")
    opt = optim.AdamW(decay_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(args.seed)
    step_times = []
    model.train()
    for it in range(args.iters):
        x, y = train.get_batch(rng.integers(0, len(train), args.batch_size))
        for g in opt.param_groups:
            g["lr"] = lr_at(it, args)
        t0 = time.perf_counter()
        loss, ce = loss_of(model, x, y, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step_times.append(time.perf_counter() - t0)
        if it % 100 == 0 or it == args.iters - 1:
            print(f"iter {it:5d}  loss {ce.item():.4f}", flush=True)
    val_loss = evaluate(model, val, args)
    ms = 1e3 * statistics.median(step_times)
    result = {"model": args.model, "val_loss": val_loss, "ms_per_step": ms,
              "train_tokens_per_s": args.batch_size * args.block_size / (ms / 1e3)}
    if args.gen_tokens:
        window = None if args.model == "mamba" else args.block_size
        t0 = time.perf_counter()
        model.generate(train.tokenizer.encode("\n")[None], max_new_tokens=args.gen_tokens, context_window=window)
        result["gen_tokens_per_s"] = args.gen_tokens / (time.perf_counter() - t0)
    print(f"\nfinal val loss {val_loss:.4f} after {args.iters} iterations ({args.model}); "
          f"{ms:.1f} ms/step (median), {result['train_tokens_per_s']:.0f} training tokens/s"
          + (f", generation {result['gen_tokens_per_s']:.0f} tokens/s" if args.gen_tokens else ""))
    return result


if __name__ == "__main__":
    main()
