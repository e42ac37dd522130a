"""``neural-arch train CONFIG --nproc N``: the launcher and what each rank runs.

The launcher (``--nproc N`` in a plain shell) validates the config, then starts
``mpiexec -n N python -m neural_arch.cli train ...`` (the same arguments without
``--nproc``; ``distributed/launch.py`` finds mpiexec and sets
``NEURAL_ARCH_NUM_THREADS`` to cores // N). Each rank (a process started by
mpiexec, srun, or the launcher) then:

* joins the process group and wraps the model in ``DistributedDataParallel``;
* reads its share of every batch: ``train.batch_size`` stays the *global* batch,
  each rank takes ``batch_size // N`` rows through a ``DistributedSampler``
  (global step k reads the same examples whatever N is, so ``--resume`` works
  with a different N and continues the data stream where it stopped);
* rank 0 alone prints progress, writes ``metrics.jsonl`` and checkpoints
  (atomically, through ``io.checkpoint``) and evaluates; checkpoints hold the
  unwrapped model, so a single process can load them too. The logged loss is
  rank 0's share's.

Stopping: SIGTERM (or Ctrl-C) to the launcher creates a stop file; SIGTERM to a
rank (Slurm's way) sets a flag. After every step the ranks agree (one small
allreduce) whether any of them was asked to stop, so all stop after the same
step and rank 0 writes the checkpoint; the launcher then exits with 130.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neural_arch.distributed as dist
from neural_arch.backend.comm import launched_by_mpi
from neural_arch.cli.build import build_run, default_run_dir
from neural_arch.config import dump_config
from neural_arch.data import DataLoader, DistributedSampler
from neural_arch.distributed.launch import mpiexec_command, threads_per_rank
from neural_arch.errors import ConfigError
from neural_arch.io.checkpoint import save_checkpoint
from neural_arch.train import JSONLLogger, ProgressBar, Trainer
from neural_arch.train.callbacks import format_metric

STOP_FILE_ENV = "NEURAL_ARCH_STOP_FILE"


def train_distributed(cfg, resume, nproc, echo) -> int:
    """Launch ``nproc`` (> 1) ranks (in a plain shell) or, inside a rank, train this rank's share."""
    if launched_by_mpi():
        return _train_rank(cfg, resume, echo)
    if cfg.train.batch_size % nproc:
        raise ConfigError(f"train.batch_size: {cfg.train.batch_size} must be a multiple of --nproc {nproc} "
                          "(it is the global batch; each rank takes an equal share)")
    return _launch(nproc, echo)


# -- the launcher -----------------------------------------------------------------------------------------
def _rank_argv() -> list:
    """This command's arguments without ``--nproc N``."""
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    return args


def _launch(nproc: int, echo) -> int:
    os.environ.setdefault("NEURAL_ARCH_NUM_THREADS", str(threads_per_rank(nproc)))
    stop_file = Path(tempfile.mkdtemp(prefix="neural-arch-")) / "stop"
    os.environ[STOP_FILE_ENV] = str(stop_file)
    argv, env = mpiexec_command(nproc, forward_env=("PYTHONPATH", "NEURAL_ARCH_NUM_THREADS", STOP_FILE_ENV))
    argv += [sys.executable, "-m", "neural_arch.cli", *_rank_argv()]
    echo(f"starting {nproc} ranks with {env['NEURAL_ARCH_NUM_THREADS']} thread(s) each: {Path(argv[0]).name}")
    # Its own session: a terminal's Ctrl-C reaches only us, and we stop the ranks in step through the stop file.
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    stopping = []

    def ask_to_stop(signum, frame):
        if not stopping:
            stopping.append(time.monotonic())
            stop_file.touch()
            echo(f"received signal {signum}: the ranks stop after the current step and save a checkpoint")

    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping and time.monotonic() - stopping[0] > 300:  # the ranks did not stop: end them
                    proc.terminate()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stop_file.unlink(missing_ok=True)
        stop_file.parent.rmdir()
    return 130 if stopping and code in (0, 130) else code


# -- one rank ---------------------------------------------------------------------------------------------
def _train_rank(cfg, resume, echo) -> int:
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if cfg.train.batch_size % world:
        raise ConfigError(f"train.batch_size: {cfg.train.batch_size} must be a multiple of the {world} ranks")
    say = echo if rank == 0 else (lambda *a, **k: None)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    run_dir = Path(dist.communicator().broadcast_object(str(run_dir)))  # one name, even if it holds a timestamp
    ckpt_path = run_dir / "checkpoints" / "last.safetensors"
    if resume is None and ckpt_path.exists():
        raise ConfigError(f"run_dir: '{run_dir}' already holds a checkpoint; continue it with --resume {ckpt_path}, "
                          "or choose another run_dir (nothing was overwritten)")
    dist.barrier()  # nobody has created anything yet when every rank has checked
    cfg = cfg.model_copy(update={"run_dir": str(run_dir)})
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")

    run = build_run(cfg)
    model = dist.DistributedDataParallel(run.model)
    full = run.train_loader
    sampler = _EpochSampler(full.dataset, world, rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(full.dataset, batch_size=cfg.train.batch_size // world, sampler=sampler, drop_last=True,
                        collate_fn=full.collate_fn, prefetch=full.prefetch)
    max_steps = cfg.train.max_steps or cfg.train.epochs * len(loader)
    n_params = sum(p.numel() for p in run.model.parameters())
    say(f"run {cfg.name}: {cfg.model.name} ({n_params:,} parameters) on {cfg.data.name}, {max_steps} steps of "
        f"{cfg.train.batch_size} over {world} ranks; run directory {run_dir}")
    callbacks = [_StepAgreement(dist)]
    if rank == 0:
        callbacks += [JSONLLogger(run_dir / "metrics.jsonl", cfg.train.log_every), ProgressBar(cfg.logging.progress)]
    trainer = _RankTrainer(
        model, run.optimizer, loader, task=run.task, val_loader=run.val_loader if rank == 0 else None,
        scheduler=run.scheduler, max_steps=max_steps, eval_every=cfg.train.eval_every,
        checkpoint_every=cfg.train.checkpoint_every, run_dir=run_dir if rank == 0 else None,
        grad_clip=cfg.train.grad_clip, precision=cfg.train.precision, callbacks=callbacks,
        metadata=run.metadata)
    trainer.world_size = world
    if resume is not None:
        note = trainer.load_checkpoint(resume)
        say(f"resumed from {resume} at step {trainer.step}" + (f" ({note})" if note else ""))
    start = time.perf_counter()
    metrics = trainer.fit()
    elapsed = time.perf_counter() - start
    dist.destroy_process_group()  # a barrier: rank 0's checkpoint is written before anyone leaves
    if trainer.interrupted:
        say(f"stopped at step {trainer.step}; checkpoint {ckpt_path}\ncontinue with: neural-arch train --resume "
            f"{ckpt_path} --nproc N (any N)")
        return 130
    summary = ", ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items())
    say(f"done: {trainer.step} steps in {elapsed:.0f} s on {world} ranks; final val {summary}; checkpoint {ckpt_path}")
    return 0


class _EpochSampler(DistributedSampler):
    """A DistributedSampler that moves to the next epoch each time an epoch's order is drawn (the loader
    saves its state before drawing, so a resumed run redraws the same order)."""

    def __iter__(self):
        order = super().__iter__()
        self.epoch += 1
        return order


class _StepAgreement:
    """After every step: did any rank get asked to stop (SIGTERM, or the launcher's stop file)? One small
    allreduce, so that every rank stops after the same step."""

    def __init__(self, dist):
        self.dist = dist
        self.requested = False
        self.stop_file = os.environ.get(STOP_FILE_ENV)

    def on_train_start(self, trainer) -> None:
        # The Trainer's own handler would stop this rank alone (the others would wait in the next allreduce):
        # here a signal only asks, and the ranks agree after the step. fit() puts the old handlers back.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame):
        self.requested = True

    def on_step_end(self, trainer, metrics) -> None:
        local = self.requested or (self.stop_file is not None and os.path.exists(self.stop_file))
        flag = np.array([1 if local else 0], dtype=np.uint8)
        self.dist.communicator().allreduce(flag, "max", check=False).wait()
        if flag[0]:
            trainer.stop_signal = signal.SIGTERM  # fit() then reports the run as interrupted
            trainer.should_stop = True


class _RankTrainer(Trainer):
    """Trainer on one rank: checkpoints hold the unwrapped model and a data position that any N can
    resume from; only the rank with a run_dir (rank 0) writes; only rank 0 evaluates."""

    def evaluate(self, loader=None) -> dict:
        if self.val_loader is None and loader is None:
            return {}
        ddp, self.model = self.model, self.model.module  # no collectives while the other ranks train on
        try:
            return super().evaluate(loader)
        finally:
            self.model = ddp

    def save_checkpoint(self, path=None):
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return None
        # not under "train_loader": a single process (whose sampler differs) then starts the epoch afresh
        data_state = {"distributed_loader": self.train_loader.state_dict(), "epoch": self.epoch,
                      "world_size": self.world_size}
        save_checkpoint(path, self.model.module, self.optimizer, self.scheduler, step=self.step,
                        data_state=data_state, metadata=dict(self.metadata, last_eval=self.last_eval))
        self._call("on_checkpoint", path)
        return path

    def load_checkpoint(self, path) -> str:
        ddp, self.model = self.model, self.model.module
        try:
            ckpt = super().load_checkpoint(path)  # every rank reads the same file: replicas stay equal
        finally:
            self.model = ddp
        data = ckpt.get("data") or {}
        state = data.get("distributed_loader")
        if state is not None:
            self.train_loader.load_state_dict(state)  # global step k reads the same rows for any N
            return "" if data.get("world_size") == self.world_size else \
                f"saved on {data.get('world_size')} ranks, continuing on {self.world_size}"
        self.train_loader.sampler.set_epoch(self.epoch)
        return "saved by a single process: the data order restarts at the beginning of the epoch"
