"""The schema of a training run: what a YAML config may say, checked field by field.

``RunConfig()`` with no arguments *is* the default job (``neural-arch train``
with no config): a small character-level transformer on the bundled Tiny
Shakespeare. ``configs/default.yaml`` spells the same values out.

Every section forbids unknown fields, so a typo (``optimiser:``, ``lr_rate:``)
is an error naming the field instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from pydantic import model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    """Which model to build (``neural_arch.models.small``) and the keyword arguments of its constructor."""

    name: Literal["char_transformer", "char_mlp", "mlp", "cnn", "gpt2", "modern", "bert", "roberta"] = "char_transformer"
    kwargs: dict[str, Any] = Field(default_factory=dict)  # unset ones take the constructor's defaults


class DataConfig(Section):
    """The dataset. Text: windows of ``block_size`` characters; images: 28x28, scaled to [0, 1] and normalised."""

    name: Literal["tinyshakespeare", "fashion_mnist", "mnist"] = "tinyshakespeare"
    root: str | None = None  # where the IDX files are (images); None: the usual places, then download
    block_size: PositiveInt = 64  # text: characters of context
    val_windows: PositiveInt = 2048  # text: evenly spaced validation windows scored at each evaluation
    normalize: bool = True  # images: subtract the training set's mean, divide by its std
    prefetch: NonNegativeInt = 2  # batches prepared ahead by the loader's background thread


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

    @model_validator(mode="after")
    def _steps_or_epochs(self):
        if self.epochs is not None and "max_steps" in self.model_fields_set and self.max_steps is not None:
            raise ValueError("give train.epochs or train.max_steps, not both")
        if self.epochs is not None:
            object.__setattr__(self, "max_steps", None)  # epochs given: the default max_steps does not apply
        elif self.max_steps is None:
            raise ValueError("give train.epochs or train.max_steps")
        return self


class LoggingConfig(Section):
    progress: bool = True  # a tqdm progress bar with loss, throughput and ETA
    plot: bool = True  # training curves to curves.png at the end (needs matplotlib)
    sample_chars: NonNegativeInt = 300  # text: characters generated at the end (0: none)


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
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
