"""Callbacks for :class:`~neural_arch.train.trainer.Trainer`: progress bar, metrics log, training curves.

- ``ProgressBar``: a tqdm bar over steps with the loss, the learning rate and
  the throughput; tqdm adds the ETA. Evaluations are printed above it.
- ``JSONLLogger``: one JSON object per line in ``metrics.jsonl`` (train lines
  every ``log_every`` steps with the mean loss since the last line; one line
  per evaluation), the format any plotting tool or ``pandas.read_json(lines=True)``
  reads.
- ``plot_curves``: ``curves.png`` from that log, if matplotlib is installed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class JSONLLogger:
    def __init__(self, path, log_every: int = 10):
        self.path = Path(path)
        self.log_every = log_every
        self._reset()

    def _reset(self) -> None:
        self.losses: list[float] = []
        self.items = 0
        self.start = time.perf_counter()

    def on_train_start(self, trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._reset()

    def on_step_end(self, trainer, metrics: dict) -> None:
        self.losses.append(metrics["loss"])
        self.items += metrics["items"]
        if trainer.step % self.log_every == 0:
            elapsed = time.perf_counter() - self.start
            self._write({"split": "train", "step": trainer.step, "epoch": trainer.epoch,
                         "loss": sum(self.losses) / len(self.losses), "lr": metrics["lr"],
                         f"{trainer.task.unit}_per_s": self.items / elapsed if elapsed > 0 else None})
            self._reset()

    def on_eval_end(self, trainer, metrics: dict) -> None:
        self._write({"split": "val", "step": trainer.step, "epoch": trainer.epoch, **metrics})

    def _write(self, record: dict) -> None:
        record["time"] = time.time()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class ProgressBar:
    def __init__(self, enabled: bool = True, file=None):
        self.enabled = enabled
        self.file = file or sys.stderr
        self.bar = None

    def on_train_start(self, trainer) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.max_steps, initial=trainer.step, unit="step", dynamic_ncols=True,
                        file=self.file, desc="train")
        self.items = 0
        self.start = time.perf_counter()

    def on_step_end(self, trainer, metrics: dict) -> None:
        if self.bar is None:
            return
        self.items += metrics["items"]
        self.bar.update(1)
        if trainer.step % 5 == 0 or trainer.step == trainer.max_steps:
            rate = self.items / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"loss {metrics['loss']:.4f}, lr {metrics['lr']:.2e}, "
                                     f"{rate:,.0f} {trainer.task.unit}/s", refresh=False)

    def on_eval_end(self, trainer, metrics: dict) -> None:
        self.write(f"step {trainer.step:>6}: " + ", ".join(f"val {k} {_fmt(k, v)}" for k, v in metrics.items()))

    def on_checkpoint(self, trainer, path) -> None:
        if trainer.interrupted or trainer._stop_requested:
            self.write(f"checkpoint saved to {path} (resume with --resume {path})")

    def on_interrupt(self, trainer) -> None:
        self.write("interrupted: finishing this step and saving a checkpoint (Ctrl-C again to abort)")

    def on_train_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)


def _fmt(key: str, value: float) -> str:
    return f"{100 * value:.2f}%" if key == "accuracy" else f"{value:.4f}"


def read_metrics(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(metrics_path, out_path) -> Path | None:
    """Plot train and val loss (and val accuracy, if logged) against steps; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = read_metrics(metrics_path)
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    has_acc = any("accuracy" in r for r in val)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", alpha=0.7)
    ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_acc:
        ax = axes[0][1]
        ax.plot([r["step"] for r in val], [100 * r["accuracy"] for r in val], "o-", color="C1")
        ax.set_xlabel("step")
        ax.set_ylabel("val accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
