"""Training: :class:`TrainConfig` presets, :func:`fit`, checkpoints, DDP helpers.

Examples
--------
>>> from sdsen.train import TrainConfig
>>> TrainConfig.preset("quick").steps
150
"""

from ..models.utils import ConfigMismatchError, check_model_config, unwrap_model
from ..persist import CHECKPOINT_FORMAT
from .checkpoint import (
    get_rng_state,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from .config import PRESETS, TrainConfig
from .devices import resolve_amp, resolve_device
from .distributed import DistInfo, cleanup_distributed, init_distributed
from .logs import (
    RUN_MARKER,
    TensorBoardRecord,
    config_changes,
    is_run_dir,
    make_grid,
    read_metrics,
    read_tensorboard,
    validation_trend,
)
from .loop import LATEST, TrainingDivergedError, fit, stage_loss
from .validation import validate

__all__ = [
    "CHECKPOINT_FORMAT",
    "LATEST",
    "PRESETS",
    "RUN_MARKER",
    "ConfigMismatchError",
    "DistInfo",
    "TensorBoardRecord",
    "TrainConfig",
    "TrainingDivergedError",
    "check_model_config",
    "cleanup_distributed",
    "config_changes",
    "fit",
    "get_rng_state",
    "init_distributed",
    "is_run_dir",
    "load_checkpoint",
    "make_grid",
    "model_from_checkpoint",
    "read_metrics",
    "read_tensorboard",
    "resolve_amp",
    "resolve_device",
    "save_checkpoint",
    "set_rng_state",
    "stage_loss",
    "unwrap_model",
    "validate",
    "validation_trend",
]
