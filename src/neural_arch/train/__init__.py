"""Layer 7: the training loop (``Trainer``), tasks, callbacks, the small models configs name, text sampling."""

from neural_arch.train.callbacks import JSONLLogger, ProgressBar, plot_curves, read_metrics
from neural_arch.train.generate import sample_text
from neural_arch.train.models import MODELS, build_model
from neural_arch.train.tasks import Classification, LanguageModeling
from neural_arch.train.trainer import Trainer

__all__ = ["Classification", "JSONLLogger", "LanguageModeling", "MODELS", "ProgressBar", "Trainer", "build_model",
           "plot_curves", "read_metrics", "sample_text"]
