"""Layer 8: run configs, pydantic schemas over YAML, with errors that name the field."""

from neural_arch.config.loading import apply_override, dump_config, load_config, merge, read_yaml, validate
from neural_arch.config.schema import (
    CallbacksConfig,
    CheckpointConfig,
    DataConfig,
    EarlyStoppingConfig,
    LoggingConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    SchedulerConfig,
    TrainConfig,
)

__all__ = [
    "CallbacksConfig", "CheckpointConfig", "DataConfig", "EarlyStoppingConfig", "LoggingConfig", "ModelConfig",
    "OptimizerConfig", "RunConfig", "SchedulerConfig", "TrainConfig",
    "apply_override", "dump_config", "load_config", "merge", "read_yaml", "validate",
]
