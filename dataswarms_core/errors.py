"""Exception classes. Every message names the file/field at fault and what was expected."""


class DataSwarmsError(Exception):
    """Base class of all errors raised by dataswarms."""


class ConfigError(DataSwarmsError, ValueError):
    """A run configuration is invalid (unknown field, bad value, unreadable YAML)."""


class DataError(DataSwarmsError, ValueError):
    """A task data file cannot be read or lacks what is needed (e.g. an ``input`` column)."""


class ModelError(DataSwarmsError):
    """A base model cannot be resolved or loaded."""


class InvalidParticleError(DataSwarmsError, ValueError):
    """Particles of one swarm disagree (keys, shapes, LoRA configuration) or hold NaN/inf values."""


class InvalidUtilityError(DataSwarmsError, ValueError):
    """A utility handed to the swarm update is missing, NaN or infinite."""


class StorageError(DataSwarmsError):
    """A checkpoint or artifact cannot be read or written."""


class ScoringError(DataSwarmsError):
    """Items cannot be scored (e.g. every judgement of a generator failed)."""
