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


class FormatError(StorageError):
    """A run file was written in another format version than this dataswarms reads."""


class ScoringError(DataSwarmsError):
    """Items cannot be scored (e.g. every judgement of a generator failed)."""


class ConfigMismatchError(ConfigError):
    """A run is resumed with a configuration that differs from the checkpointed one."""


_TRANSIENT_NAME_PARTS = (
    "Connection",
    "Timeout",
    "Throttl",
    "SlowDown",
    "ServiceUnavailable",
    "EndpointConnection",
)
_NETWORK_MODULES = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "httpx", "openai", "s3fs")


def _http_status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)  # openai.APIStatusError
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)  # botocore ClientError keeps the parsed response dict
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    return None


def is_transient_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a transient I/O fault worth retrying:
    connection failures, timeouts, throttling, 5xx from storage or model endpoints.

    Bad input (:class:`DataError`, :class:`ConfigError`, invalid particles or utilities, missing files) is
    never transient: retrying cannot fix it.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(getattr(exc, "transient", None), bool):  # errors that know (e.g. EndpointError)
            return exc.transient
        if isinstance(
            exc, (DataError, ConfigError, InvalidParticleError, InvalidUtilityError, ScoringError, ModelError)
        ):
            return False
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        name, module = type(exc).__name__, type(exc).__module__.split(".")[0]
        if module in _NETWORK_MODULES and any(part in name for part in _TRANSIENT_NAME_PARTS):
            return True
        status = _http_status(exc) if module in _NETWORK_MODULES else None
        if status is not None and (status >= 500 or status in (408, 429)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
