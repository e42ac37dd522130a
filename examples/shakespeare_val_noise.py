"""How noisy is a val loss read from a few random batches? Score a trained character model on every
window of Tiny Shakespeare's validation split, then draw nanoGPT's estimate (``eval_iters`` batches of
``batch`` random windows) many times.

    python examples/shakespeare_val_noise.py RUN_DIR [--eval-iters 20] [--batch 12] [--draws 20000]

RUN_DIR is a ``neural-arch train`` run directory (or its checkpoint) of a model with 64-character
windows, e.g. ``neural-arch train configs/gpt_shakespeare.yaml --set seed=5``.

Measured (2026-11-30) on that seed-5 GPT: all 111,476 windows 1.8933; one window's loss has sd 0.226;
nanoGPT's 20 x 12-window estimate has sd 0.0146, 5th-95th percentiles 1.869-1.918, and reads <= 1.88
in 18% of draws.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import neural_arch as na
from neural_arch.cli.generate import load_language_model
from neural_arch.data import TinyShakespeare

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): RUN_DIR optional (a 3-step run is trained), few windows
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"


def window_losses(model, block: int, batch: int = 512) -> np.ndarray:
    """Mean next-character loss (nats) of every ``block``-long window of the validation split."""
    val = TinyShakespeare("val", block)
    count = min(len(val), 1024) if SMOKE else len(val)
    losses = np.empty(count)
    with na.no_grad():
        for lo in range(0, count, batch):
            pairs = [val[i] for i in range(lo, min(count, lo + batch))]
            x = np.stack([np.asarray(a) for a, _ in pairs])
            y = np.stack([np.asarray(b) for _, b in pairs])
            out = model(na.tensor(x))
            logits = getattr(out, "logits", out).numpy().astype(np.float64)
            top = logits.max(-1, keepdims=True)
            log_z = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
            losses[lo:lo + len(pairs)] = (log_z - np.take_along_axis(logits, y[..., None], -1)[..., 0]).mean(-1)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, **({"nargs": "?"} if SMOKE else {}))
    parser.add_argument("--eval-iters", type=int, default=20)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--threshold", type=float, default=1.88)
    args = parser.parse_args()
    if SMOKE and args.run is None:
        args.run = Path(tempfile.mkdtemp()) / "run"
        subprocess.run([sys.executable, "-m", "neural_arch.cli", "train", "--set", "train.max_steps=3",
                        "--set", "train.eval_every=3", "--set", f"run_dir={args.run}", "--set",
                        "logging.sample_chars=0"], check=True)
        args.draws = 100

    model, _ = load_language_model(args.run)
    losses = window_losses(model, args.block)
    k = args.eval_iters * args.batch
    rng = np.random.default_rng(0)
    draws = np.array([losses[rng.integers(0, len(losses), k)].mean() for _ in range(args.draws)])
    print(f"windows {len(losses):,}: mean loss {losses.mean():.4f}, one window's sd {losses.std():.4f}")
    print(f"estimate from {args.eval_iters} x {args.batch} random windows: sd {draws.std():.4f}, "
          f"5th-95th percentile {np.percentile(draws, 5):.4f}-{np.percentile(draws, 95):.4f}, "
          f"<= {args.threshold} in {np.mean(draws <= args.threshold):.1%} of {args.draws:,} draws")


if __name__ == "__main__":
    main()
