"""``curves.png`` from a run's ``metrics.jsonl``: loss, validation accuracy, learning rate, throughput.

Drawn on a ``matplotlib.figure.Figure`` with its own Agg canvas, never through
pyplot: a notebook's or an application's matplotlib backend stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from neural_arch.train.loggers import read_metrics


def plot_curves(metrics_path, out_path) -> Path | None:
    """Plot the run's curves against steps into ``out_path``; None if matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional: the cli extra
    except ImportError:
        return None
    records = read_metrics(metrics_path)
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    rate_key = next((k for r in train for k in r if k.endswith("_per_s")), None)
    panels = ["loss"] + (["accuracy"] if any("accuracy" in r for r in val) else []) + ["lr"] + (
        ["throughput"] if rate_key else [])
    fig = Figure(figsize=(4.5 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", alpha=0.7)
            ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="val")
            ax.set_ylabel("loss")
            ax.legend()
        elif panel == "accuracy":
            points = [(r["step"], 100 * r["accuracy"]) for r in val if "accuracy" in r]
            ax.plot(*zip(*points), "o-", color="C1")
            ax.set_ylabel("val accuracy (%)")
        elif panel == "lr":
            ax.plot([r["step"] for r in train], [r["lr"] for r in train], color="C2")
            ax.set_ylabel("learning rate")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        else:
            points = [(r["step"], r[rate_key]) for r in train if r.get(rate_key)]
            ax.plot(*zip(*points) if points else ([], []), color="C3")
            ax.set_ylabel(rate_key.replace("_per_s", "/s"))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    return out_path
