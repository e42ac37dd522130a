"""The schema of a training run: what a YAML config may say, checked field by field.

``RunConfig()`` with no arguments *is* the default job (``neural-arch train``
with no config): a small character-level transformer on the bundled Tiny
Shakespeare. ``configs/default.yaml`` spells the same values out.

Every section forbids unknown fields, so a typo (``optimiser:``, ``lr_rate:``)
is an error naming the field instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _class_path_or_name(section, builtin: str):
    """``class_path`` replaces ``name`` (LightningCLI's spelling); ``init_args`` go with the class only."""
    if section.class_path is not None:
        if "name" in section.model_fields_set and section.name is not None:
            raise ValueError(f"give {builtin}.name or {builtin}.class_path, not both")
        object.__setattr__(section, "name", None)
    elif section.init_args:
        raise ValueError(f"{builtin}.init_args go with {builtin}.class_path; a built-in {builtin} takes "
                         + ("kwargs" if builtin == "model" else "its own fields"))
    return section


class ModelConfig(Section):
    """Which model to build: a built-in ``name`` (``neural_arch.models.small``) with ``kwargs``, or your
    own class, ``class_path: my_package.MyNet`` with ``init_args`` (checked against its signature)."""

    name: Literal["char_transformer", "char_mlp", "mlp", "cnn", "gpt2", "modern", "bert", "roberta"] | None = \
        "char_transformer"
    kwargs: dict[str, Any] = Field(default_factory=dict)  # unset ones take the constructor's defaults
    class_path: str | None = None  # module.Class, importable (the current directory is on the path)
    init_args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_model(self):
        return _class_path_or_name(self, "model")


class DataConfig(Section):
    """The dataset. Text: windows of ``block_size`` characters; images: 28x28, scaled to [0, 1] and normalised.

    Or your own: ``class_path`` names a ``Dataset`` (``val_fraction`` of it is held out, seeded) or a data
    module with ``train_dataloader()`` and ``val_dataloader()``, built with ``init_args``.
    """

    name: Literal["tinyshakespeare", "fashion_mnist", "mnist"] | None = "tinyshakespeare"
    class_path: str | None = None
    init_args: dict[str, Any] = Field(default_factory=dict)
    root: str | None = None  # where the IDX files are (images); None: the usual places, then download
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # images, own Dataset: held out of train for validation
    block_size: PositiveInt = 64  # text: characters of context
    val_windows: PositiveInt = 2048  # text: evenly spaced validation windows scored at each evaluation
    normalize: bool = True  # images: subtract the training set's mean, divide by its std
    prefetch: NonNegativeInt = 2  # batches prepared ahead by the loader's background thread

    @model_validator(mode="after")
    def _one_dataset(self):
        return _class_path_or_name(self, "data")


class OptimizerConfig(Section):
    name: Literal["adamw", "adam", "sgd", "lion", "rmsprop", "adagrad"] = "adamw"
    lr: PositiveFloat = 2e-3
    weight_decay: NonNegativeFloat = 0.01
    betas: tuple[float, float] | None = None  # adam, adamw, lion (None: the optimizer's default)
    momentum: NonNegativeFloat = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd


class SchedulerConfig(Section):
    """Learning-rate schedule, stepped once per optimizer step."""

    name: Literal["none", "cosine", "warmup_cosine", "step", "onecycle"] = "warmup_cosine"
    warmup_steps: NonNegativeInt = 100  # warmup_cosine
    min_lr: NonNegativeFloat = 1e-4  # cosine, warmup_cosine: the final learning rate
    step_size: PositiveInt = 1000  # step: multiply the lr by gamma every step_size steps
    gamma: PositiveFloat = 0.1  # step


class TrainConfig(Section):
    """How long and how: ``epochs`` (when given) or ``max_steps``, not both."""

    batch_size: PositiveInt = 32
    epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = 2000
    eval_every: PositiveInt | None = 250  # steps between evaluations (None: once per epoch)
    checkpoint_every: PositiveInt | None = 500  # steps between checkpoints (always one at the end)
    grad_clip: PositiveFloat | None = 1.0  # max global gradient norm (None: no clipping)
    log_every: PositiveInt = 10  # steps between lines in metrics.jsonl
    accumulate_grad_batches: PositiveInt = 1  # batches summed into one optimizer step
    on_nonfinite: Literal["halt", "skip"] = "halt"  # a nan/inf loss: save and stop, or drop the step
    max_nonfinite: PositiveInt = 5  # skip: halt after this many non-finite steps in a row
    task: Literal["auto", "classification", "language_modeling", "masked_language_modeling"] = "auto"
    compile: bool = False  # na.compile the forward and backward: captured once per shape, then replayed

    @model_validator(mode="after")
    def _steps_or_epochs(self):
        if self.epochs is not None and "max_steps" in self.model_fields_set and self.max_steps is not None:
            raise ValueError("give train.epochs or train.max_steps, not both")
        if self.epochs is not None:
            object.__setattr__(self, "max_steps", None)  # epochs given: the default max_steps does not apply
        elif self.max_steps is None:
            raise ValueError("give train.epochs or train.max_steps")
        return self


class EarlyStoppingConfig(Section):
    monitor: str = "loss"  # a validation metric
    mode: Literal["min", "max"] = "min"
    patience: PositiveInt = 3  # evaluations without improvement before stopping
    min_delta: NonNegativeFloat = 0.0


class CheckpointConfig(Section):
    """Keep the best checkpoints by a validation metric (``last.safetensors`` is always written)."""

    monitor: str = "loss"
    mode: Literal["min", "max"] = "min"
    save_top_k: int = Field(1, ge=-1)  # -1: all
    every_n_steps: PositiveInt | None = None


class CallbacksConfig(Section):
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint: CheckpointConfig | None = None
    lr_monitor: bool = False  # lr of every parameter group in the logs
    grad_norm_monitor: bool = False  # the gradient norm before clipping in the logs


class LoggingConfig(Section):
    backends: list[Literal["jsonl", "csv", "tensorboard", "mlflow", "wandb"]] = Field(default_factory=lambda: ["jsonl"])
    mlflow_uri: str | None = None  # None: sqlite:///<runs directory>/mlflow.db
    histogram_every: NonNegativeInt = 100  # tensorboard: weight and gradient histograms (0: none)
    progress: bool = True  # a tqdm progress bar with loss, throughput and ETA
    plot: bool = True  # training curves to curves.png at the end (needs matplotlib)
    sample_chars: NonNegativeInt = 300  # text: characters generated at the end (0: none)

    @model_validator(mode="after")
    def _jsonl_kept(self):
        if "jsonl" not in self.backends:  # curves.png, evaluate and resume read metrics.jsonl
            object.__setattr__(self, "backends", ["jsonl", *self.backends])
        return self


class RunConfig(Section):
    """A whole training run."""

    name: str = "shakespeare-char"
    seed: int = 1337
    run_dir: str | None = None  # None: runs/<name>-<date>-<time>
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
