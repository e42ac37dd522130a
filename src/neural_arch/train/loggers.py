"""Experiment tracking: the same metrics to JSONL, CSV, TensorBoard, MLflow or Weights & Biases.

Every logger is a callback built on :class:`MetricLogger`, which averages the
training loss over ``log_every`` steps and hands out one record per line::

    {"split": "train", "step": 20, "epoch": 0, "loss": 2.31, "lr": 0.002, "tokens_per_s": 41000.0, ...}
    {"split": "val", "step": 250, "epoch": 1, "loss": 1.98, "accuracy": 0.41}

Each backend writes those records through its own library: ``JSONLLogger``
(the default, read back by :func:`read_metrics`), ``CSVLogger`` (``csv``),
``TensorBoardLogger`` (tensorboardX: scalars, weight and gradient histograms,
text, images, hparams), ``MLflowLogger`` (the MLflow client: params, metrics,
artifacts) and ``WandbLogger`` (wandb in offline mode). :func:`make_loggers`
builds them from the names a config lists.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from neural_arch.errors import ConfigError
from neural_arch.train.callbacks import Callback

BACKENDS = ("jsonl", "csv", "tensorboard", "mlflow", "wandb")
LIBRARIES = {"tensorboard": "tensorboardX", "mlflow": "mlflow", "wandb": "wandb"}


class MetricLogger(Callback):
    """Turns the trainer's per-step metrics into log records; subclasses say where a record goes (``write``)."""

    def __init__(self, log_every: int = 10):
        self.log_every = log_every
        self._reset()

    def _reset(self) -> None:
        self.losses: list[float] = []
        self.items = 0
        self.start = time.perf_counter()

    def on_train_start(self, trainer) -> None:
        self._reset()

    def on_step_end(self, trainer, metrics: dict) -> None:
        self.losses.append(metrics["loss"])
        self.items += metrics["items"]
        if trainer.step % self.log_every == 0:
            elapsed = time.perf_counter() - self.start
            extra = {k: v for k, v in metrics.items() if k not in ("loss", "lr", "items", "seconds")}
            self.write({"split": "train", "step": trainer.step, "epoch": trainer.epoch,
                        "loss": sum(self.losses) / len(self.losses), "lr": metrics["lr"],
                        f"{trainer.task.unit}_per_s": self.items / elapsed if elapsed > 0 else None, **extra})
            self._reset()

    def on_eval_end(self, trainer, metrics: dict) -> None:
        self.write({"split": "val", "step": trainer.step, "epoch": trainer.epoch, **metrics})

    def write(self, record: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def scalars(record: dict) -> dict[str, float]:
        """``split/name -> value`` for the numbers of a record (what TensorBoard, MLflow and W&B plot)."""
        return {f"{record['split']}/{k}": float(v) for k, v in record.items()
                if k not in ("split", "step", "epoch", "time") and isinstance(v, (int, float)) and v is not None}


class JSONLLogger(MetricLogger):
    """One JSON object per line in ``path`` (``pandas.read_json(path, lines=True)`` reads it)."""

    def __init__(self, path, log_every: int = 10):
        super().__init__(log_every)
        self.path = Path(path)

    def on_train_start(self, trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().on_train_start(trainer)

    def write(self, record: dict) -> None:
        record["time"] = time.time()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class CSVLogger(MetricLogger):
    """``metrics.csv``: one row per record; the header grows when a new column appears (the file is rewritten)."""

    def __init__(self, path, log_every: int = 10):
        super().__init__(log_every)
        self.path = Path(path)
        self.columns: list[str] = []

    def on_train_start(self, trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # resumed: keep the rows and their columns
            with open(self.path, newline="", encoding="utf-8") as f:
                self.columns = next(csv.reader(f), [])
        super().on_train_start(trainer)

    def write(self, record: dict) -> None:
        new = [k for k in record if k not in self.columns]
        if new:
            rows = []
            if self.path.exists():
                with open(self.path, newline="", encoding="utf-8") as f:
                    rows = list(csv.DictReader(f))
            self.columns += new
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(rows)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, self.columns).writerow(record)


class TensorBoardLogger(MetricLogger):
    """TensorBoard event files in ``log_dir`` through tensorboardX.

    Scalars ``train/loss``, ``val/accuracy``, ...; histograms of every parameter and its gradient
    every ``histogram_every`` steps (0: never); :meth:`log_text` and :meth:`log_image` for samples;
    at the end, ``hparams`` with the final validation metrics.
    """

    def __init__(self, log_dir, log_every: int = 10, histogram_every: int = 100, hparams: dict | None = None):
        super().__init__(log_every)
        from tensorboardX import SummaryWriter  # noqa: PLC0415 - optional: the tensorboard extra

        self.writer = SummaryWriter(str(log_dir))
        self.histogram_every = histogram_every
        self.hparams = _flat(hparams or {})

    def on_before_optimizer_step(self, trainer) -> None:
        step = trainer.step + 1
        if not self.histogram_every or step % self.histogram_every:
            return
        for name, p in trainer.model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", np.asarray(p.data), step)
            if p.grad is not None:
                self.writer.add_histogram(f"grads/{name}", np.asarray(p.grad.data), step)

    def write(self, record: dict) -> None:
        for key, value in self.scalars(record).items():
            self.writer.add_scalar(key, value, record["step"])

    def log_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """``image``: (H, W) or (H, W, C) in [0, 1] or uint8."""
        self.writer.add_image(tag, image, step, dataformats="HW" if image.ndim == 2 else "HWC")

    def on_train_end(self, trainer) -> None:
        if self.hparams and trainer.last_eval:
            self.writer.add_hparams(self.hparams, {f"hparam/{k}": float(v) for k, v in trainer.last_eval.items()},
                                    name="hparams", global_step=trainer.step)
        self.writer.close()


class MLflowLogger(MetricLogger):
    """An MLflow run through ``mlflow.MlflowClient``: params, metrics by step, artifacts at the end.

    ``tracking_uri`` default: a SQLite store ``sqlite:///<run_dir's parent>/mlflow.db`` (what recent
    MLflow accepts without extra settings; ``mlflow ui --backend-store-uri`` that URI shows it),
    artifacts beside it in ``mlartifacts/``. ``artifacts``: files logged when training ends (the
    config, the curves, the final checkpoint).
    """

    def __init__(self, run_dir, experiment: str = "neural-arch", run_name: str | None = None,
                 tracking_uri: str | None = None, params: dict | None = None, log_every: int = 10):
        super().__init__(log_every)
        from mlflow import MlflowClient  # noqa: PLC0415 - optional: the mlflow extra

        store = Path(run_dir).resolve().parent
        self.tracking_uri = tracking_uri or f"sqlite:///{store / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(
            experiment, artifact_location=None if tracking_uri else (store / "mlartifacts").as_uri())
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        for key, value in _flat(params or {}).items():
            self.client.log_param(self.run_id, key, str(value)[:6000])
        self.artifacts: list[Path] = []

    def write(self, record: dict) -> None:
        for key, value in self.scalars(record).items():
            self.client.log_metric(self.run_id, key, value, step=record["step"])

    def on_train_end(self, trainer) -> None:
        for path in self.artifacts:
            if Path(path).is_file():
                self.client.log_artifact(self.run_id, str(path))
        status = "FAILED" if getattr(trainer, "error", None) else "KILLED" if trainer.interrupted else "FINISHED"
        self.client.set_terminated(self.run_id, status)


class WandbLogger(MetricLogger):
    """A Weights & Biases run in offline mode under ``run_dir/wandb`` (``wandb sync`` uploads it later)."""

    def __init__(self, run_dir, project: str = "neural-arch", run_name: str | None = None,
                 config: dict | None = None, log_every: int = 10):
        super().__init__(log_every)
        import wandb  # noqa: PLC0415 - optional: the wandb extra

        self.run = wandb.init(project=project, name=run_name, dir=str(run_dir), mode="offline",
                              config=config or {}, reinit="create_new")

    def write(self, record: dict) -> None:
        self.run.log(self.scalars(record), step=record["step"])

    def on_train_end(self, trainer) -> None:
        self.run.finish()


def _flat(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}} -> {"a.b": 1}``: nested config sections as dotted hparam names."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def check_backends(names) -> None:
    """``ConfigError`` for an unknown backend or one whose library is not installed (before anything is written)."""
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ConfigError(f"logging.backends: {', '.join(map(repr, unknown))} not one of {', '.join(BACKENDS)}")
    for name in names:
        if name in LIBRARIES and importlib.util.find_spec(LIBRARIES[name]) is None:
            raise ConfigError(f"logging.backends: {name} needs {LIBRARIES[name]}; pip install 'neural-arch[{name}]'")


def make_loggers(names, run_dir, log_every: int = 10, config: dict | None = None, run_name: str | None = None,
                 mlflow_uri: str | None = None) -> list[MetricLogger]:
    """The loggers a config's ``logging.backends`` names, writing under ``run_dir``."""
    check_backends(names)
    run_dir = Path(run_dir)
    makers = {
        "jsonl": lambda: JSONLLogger(run_dir / "metrics.jsonl", log_every),
        "csv": lambda: CSVLogger(run_dir / "metrics.csv", log_every),
        "tensorboard": lambda: TensorBoardLogger(run_dir / "tensorboard", log_every, hparams=config),
        "mlflow": lambda: MLflowLogger(run_dir, run_name=run_name, tracking_uri=mlflow_uri, params=config,
                                       log_every=log_every),
        "wandb": lambda: WandbLogger(run_dir, run_name=run_name, config=config, log_every=log_every),
    }
    loggers = []
    for name in dict.fromkeys(names):
        try:
            loggers.append(makers[name]())
        except ImportError as e:
            raise ConfigError(f"logging.backends: {name} needs its library ({e.name}); "
                              f"pip install 'neural-arch[{name}]'") from None
    return loggers
