"""User-facing errors: the command line prints these as one line, without a traceback."""

__all__ = ["SpikeformersError", "ConfigError", "DatasetError", "CheckpointError", "TrainingDiverged"]


class SpikeformersError(Exception):
    """Base class of errors caused by user input (bad config, missing files, ...)."""


class ConfigError(SpikeformersError, ValueError):
    """An unknown key or a value of the wrong type in a config or override."""


class DatasetError(SpikeformersError):
    """A dataset is missing or malformed; the message says where it was expected and how to get it."""


class CheckpointError(SpikeformersError):
    """A checkpoint is missing, corrupt, or does not match the model."""


class TrainingDiverged(SpikeformersError):
    """The loss became NaN or infinite."""
