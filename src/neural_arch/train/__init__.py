"""Layer 7: the training loop (``Trainer``), tasks, callbacks, the small models configs name, text sampling."""

from neural_arch.train.callbacks import JSONLLogger, ProgressBar, plot_curves, read_metrics
from neural_arch.train.generate import demo_text, fill_masked_text, sample_text
from neural_arch.train.models import MODELS, build_model
from neural_arch.train.tasks import Classification, LanguageModeling, MaskedLanguageModeling
from neural_arch.train.trainer import Trainer

__all__ = ["Classification", "JSONLLogger", "LanguageModeling", "MODELS", "MaskedLanguageModeling", "ProgressBar",
           "Trainer", "build_model", "demo_text", "fill_masked_text", "plot_curves", "read_metrics", "sample_text"]
