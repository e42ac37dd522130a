"""``neural-arch train``: a run from YAML configs, into a run directory that records everything.

    neural-arch train configs/fashion_mlp.yaml --set optimizer.lr=3e-4
    neural-arch train -c base.yaml -c small.yaml --set seed=1      # merged in order, then --set
    neural-arch train -c my_run.yaml --print-config                 # the resolved config, nothing run
    neural-arch train --resume runs/x/checkpoints/last.safetensors

The run directory holds ``config.yaml``, ``metrics.jsonl`` (and the other chosen
logs), ``checkpoints/``, ``curves.png``, ``environment.json`` (package versions,
the git commit, ``neural-arch info``) and ``console.log`` (a copy of what was
printed). It is created only once the run is built, so a config that fails
leaves nothing behind. SIGINT and SIGTERM save a checkpoint and exit with
128 + the signal number.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

from neural_arch.backend.comm import launched_by_mpi
from neural_arch.cli.build import build_run, checkpoint_config, default_run_dir
from neural_arch.cli.distributed import train_distributed
from neural_arch.cli.info import collect_info, package_versions
from neural_arch.config import dump_config, load_config
from neural_arch.errors import ConfigError, NeuralArchError
from neural_arch.train import (
    EarlyStopping,
    GradientNormMonitor,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    demo_text,
    make_loggers,
)
from neural_arch.train.callbacks import Callback, format_metric
from neural_arch.train.loggers import check_backends
from neural_arch.train.plots import plot_curves


@click.command(short_help="Train a model from YAML configs.")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-c", "--config", "configs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A YAML config; repeat to merge several in order (after CONFIG).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set optimizer.lr=3e-4 (repeatable, applied last).")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), help="A checkpoint to continue from.")
@click.option("--print-config", is_flag=True, help="Print the fully resolved config as YAML and exit.")
@click.option("--nproc", type=click.IntRange(min=1), default=None,
              help="Train data-parallel on N processes (MPI ranks) of this machine; batch_size stays the global batch.")
def train(config, configs, overrides, resume, print_config, nproc, **options) -> None:
    """Train the model described by CONFIG (YAML; default: a character model on Tiny Shakespeare).

    Your own model and data: model.class_path / data.class_path with init_args (see README).
    """
    try:
        paths = ([config] if config is not None else []) + list(configs)
        if not paths and resume is not None:  # continue the run the checkpoint came from
            cfg = load_config(None, overrides, base=checkpoint_config(resume))
        else:
            cfg = load_config(paths, overrides)
        if print_config:
            click.echo(dump_config(cfg), nl=False)
            return
        if (nproc or 1) > 1 or launched_by_mpi():  # the launcher, or one of its ranks (cli/distributed.py)
            code = train_distributed(cfg, resume, nproc, click.echo)
        else:
            code = run_training(cfg, resume)
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    sys.exit(code)


class Console:
    """``echo`` that also appends to ``console.log`` in the run directory (once it exists)."""

    def __init__(self, echo=click.echo):
        self.echo = echo
        self.path: Path | None = None
        self.pending: list[str] = []

    def __call__(self, text: str = "") -> None:
        self.echo(text)
        self.copy(text)

    def copy(self, text: str) -> None:
        if self.path is None:
            self.pending.append(text)
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def open(self, path: Path) -> None:
        self.path = path
        for text in self.pending:
            self.copy(text)
        self.pending = []


def run_training(cfg, resume=None, echo=click.echo) -> int:
    """Train ``cfg`` (resuming from ``resume``); 0 when finished, 128 + signal when stopped by SIGINT/SIGTERM."""
    console = Console(echo)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    ckpt_path = run_dir / "checkpoints" / "last.safetensors"
    if resume is None and ckpt_path.exists():
        raise ConfigError(f"run_dir: '{run_dir}' already holds a checkpoint; continue it with --resume {ckpt_path}, "
                          "or choose another run_dir (nothing was overwritten)")
    cfg = cfg.model_copy(update={"run_dir": str(run_dir)})
    run = build_run(cfg)  # before the directory exists: a config that fails to build leaves nothing behind
    check_backends(cfg.logging.backends)
    run_dir.mkdir(parents=True, exist_ok=True)
    console.open(run_dir / "console.log")
    (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    write_environment(run_dir / "environment.json")

    n_params = sum(p.numel() for p in run.model.parameters())
    model_name = cfg.model.name or cfg.model.class_path
    console(f"run {cfg.name}: {model_name} ({n_params:,} parameters) on {cfg.data.name or cfg.data.class_path}, "
            f"{run.max_steps} steps of {cfg.train.batch_size}; run directory {run_dir}")
    if run.data_description:
        console(run.data_description)
    loggers = make_loggers(cfg.logging.backends, run_dir, cfg.train.log_every, config=cfg.model_dump(mode="json"),
                           run_name=run_dir.name, mlflow_uri=cfg.logging.mlflow_uri)
    for logger in loggers:
        if hasattr(logger, "artifacts"):  # MLflow: the config, the curves and the final checkpoint
            logger.artifacts = [run_dir / "config.yaml", run_dir / "curves.png", ckpt_path]
        if hasattr(logger, "histogram_every"):
            logger.histogram_every = cfg.logging.histogram_every
    extras = RunExtras(run, run_dir, cfg, loggers, console)
    trainer = Trainer(run.model, run.optimizer, run.train_loader, run.val_loader, task=run.task,
                      callbacks=[*monitors(cfg, run_dir), ProgressBar(cfg.logging.progress, copy=console.copy),
                                 extras, *loggers],
                      scheduler=run.scheduler, max_steps=run.max_steps, steps_per_epoch=run.steps_per_epoch,
                      val_every=cfg.train.eval_every, checkpoint_every=cfg.train.checkpoint_every, run_dir=run_dir,
                      grad_clip=cfg.train.grad_clip, accumulate_grad_batches=cfg.train.accumulate_grad_batches,
                      on_nonfinite=cfg.train.on_nonfinite, max_nonfinite=cfg.train.max_nonfinite,
                      metadata=run.metadata, compile=cfg.train.compile)
    if resume is not None:
        trainer.load_checkpoint(resume)
        console(f"resumed from {resume} at step {trainer.step}")
    start = time.perf_counter()
    metrics = trainer.fit()
    elapsed = time.perf_counter() - start
    if trainer.interrupted:
        console(f"stopped at step {trainer.step}; checkpoint {trainer.checkpoint_path}\n"
                f"continue with: neural-arch train --resume {trainer.checkpoint_path}")
        return 128 + int(trainer.stop_signal)
    summary = ", ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items())
    console(f"done: {trainer.step} steps in {elapsed:.0f} s; final val {summary}; checkpoint {trainer.checkpoint_path}")
    if trainer.compiled is not None:
        refused = "; ".join(sorted(set(trainer.compiled.refusals)))
        console(f"compile: {trainer.compiled.programs} batch shape(s) replayed"
                + (f"; eager because {refused}" if refused else ""))
    if cfg.logging.plot:
        console(f"training curves: {extras.curves}" if extras.curves else "matplotlib is not installed: no "
                "curves.png (pip install 'neural-arch[cli]')")
    if extras.sample:
        console(extras.sample)
    return 0


def monitors(cfg, run_dir: Path) -> list:
    """The callbacks the config's ``callbacks`` section asks for."""
    c = cfg.callbacks
    out: list = []
    if c.lr_monitor:
        out.append(LearningRateMonitor())
    if c.grad_norm_monitor:
        out.append(GradientNormMonitor())
    if c.early_stopping is not None:
        e = c.early_stopping
        out.append(EarlyStopping(e.monitor, e.patience, e.mode, e.min_delta))
    if c.checkpoint is not None:
        k = c.checkpoint
        out.append(ModelCheckpoint(run_dir / "checkpoints", k.monitor, k.mode, k.save_top_k, save_last=True,
                                   every_n_steps=k.every_n_steps))
    return out


class RunExtras(Callback):
    """What a CLI run adds at its edges: example images and a text sample for the loggers, curves.png."""

    def __init__(self, run, run_dir: Path, cfg, loggers, console):
        self.run, self.run_dir, self.cfg, self.loggers, self.console = run, run_dir, cfg, loggers, console
        self.curves: Path | None = None
        self.sample = ""

    def on_train_start(self, trainer) -> None:
        loggers = [lg for lg in self.loggers if hasattr(lg, "log_image")]
        if not loggers or self.run.tokenizer is not None or self.run.val_loader is None:
            return
        x = next(iter(self.run.val_loader))[0]
        images = x.numpy()[:8] if hasattr(x, "numpy") else None
        if images is None or images.ndim != 4:
            return
        grid = images[:, 0].transpose(1, 0, 2).reshape(images.shape[2], -1)  # 8 images side by side
        grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-12)
        for logger in loggers:
            logger.log_image("val/examples", grid, trainer.step)

    def on_train_end(self, trainer) -> None:
        if self.cfg.logging.plot and (self.run_dir / "metrics.jsonl").exists():
            self.curves = plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
        if self.run.tokenizer is not None and self.cfg.logging.sample_chars and not trainer.interrupted:
            self.sample = demo_text(self.run.model, self.run.tokenizer, self.cfg.logging.sample_chars)
            for logger in self.loggers:
                if hasattr(logger, "log_text"):
                    logger.log_text("sample", self.sample, trainer.step)


def write_environment(path: Path) -> None:
    """Package versions, the git commit of the working directory (if any), and ``neural-arch info``."""
    record = {"command": sys.argv, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_state(),
              "packages": package_versions(), "info": collect_info()}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def git_state() -> dict | None:
    """The commit and dirtiness of the git repository around the current directory; None outside one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
