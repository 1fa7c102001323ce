"""Exceptions that the CLI turns into one-line messages (no traceback) and a non-zero exit."""
from __future__ import annotations


class DetzooError(Exception):
    """Base class for user-facing errors: the message alone must tell what is wrong and where."""


class ConfigError(DetzooError):
    """A config file is missing, malformed, or names an unknown key."""


class DataError(DetzooError):
    """An annotation file, an image or a dataset entry is missing or malformed."""


class UnreadableImageError(DataError):
    """An image file is missing, empty or cannot be decoded; ``path`` names it. Training skips
    such images (counted in the log); testing and inference stop on them."""

    def __init__(self, message: str, path: str | None = None):  # one-argument form: re-raised by loader workers
        super().__init__(message)
        self.path = path


class CheckpointError(DetzooError):
    """A checkpoint is missing, corrupt, or does not fit the model."""
