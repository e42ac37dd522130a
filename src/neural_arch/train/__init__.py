"""Layer 7: the training loop (``Trainer``), tasks, callbacks, loggers, metrics, plots, text sampling."""

from neural_arch.models.small import MODELS, build_model
from neural_arch.train.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormMonitor,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
)
from neural_arch.train.generate import demo_text, fill_masked_text, sample_text
from neural_arch.train.loggers import (
    CSVLogger,
    JSONLLogger,
    MetricLogger,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
    make_loggers,
    read_metrics,
)
from neural_arch.train.plots import plot_curves
from neural_arch.train.precision import Precision
from neural_arch.train.tasks import Classification, LanguageModeling, MaskedLanguageModeling, Task, as_task
from neural_arch.train.trainer import Trainer

__all__ = [
    "MODELS", "CSVLogger", "Callback", "Classification", "EarlyStopping", "GradientNormMonitor", "JSONLLogger",
    "LanguageModeling", "LearningRateMonitor", "MLflowLogger", "MaskedLanguageModeling", "MetricLogger",
    "ModelCheckpoint", "Precision", "ProgressBar", "Task", "TensorBoardLogger", "Trainer", "WandbLogger", "as_task",
    "build_model", "demo_text", "fill_masked_text", "make_loggers", "plot_curves", "read_metrics", "sample_text",
]
