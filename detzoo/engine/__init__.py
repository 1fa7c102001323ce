"""Training engine: epoch loop, checkpoints, lr schedules, optimizers, logs, seeding."""
from detzoo.engine.checkpoint import (LoadResult, latest_checkpoint, load_checkpoint, load_model_weights,
                                      save_checkpoint, update_latest)
from detzoo.engine.logging import TrainLogger, progress_bar
from detzoo.engine.lr_schedule import (CosineLrSchedule, FixedLrSchedule, LrSchedule, StepLrSchedule,
                                       build_lr_schedule)
from detzoo.engine.optim import auto_scale_lr, build_optimizer
from detzoo.engine.seed import set_random_seed
from detzoo.engine.trainer import Trainer, train_detector

__all__ = [
    "LoadResult", "latest_checkpoint", "load_checkpoint", "load_model_weights", "save_checkpoint",
    "update_latest", "TrainLogger", "progress_bar", "CosineLrSchedule", "FixedLrSchedule",
    "LrSchedule", "StepLrSchedule", "build_lr_schedule", "auto_scale_lr", "build_optimizer",
    "set_random_seed", "Trainer", "train_detector",
]
