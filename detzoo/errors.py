"""Exceptions that the CLI turns into one-line messages (no traceback) and a non-zero exit."""


class DetzooError(Exception):
    """Base class for user-facing errors: the message alone must tell what is wrong and where."""


class ConfigError(DetzooError):
    """A config file is missing, malformed, or names an unknown key."""


class DataError(DetzooError):
    """An annotation file, an image or a dataset entry is missing or malformed."""


class CheckpointError(DetzooError):
    """A checkpoint is missing, corrupt, or does not fit the model."""
