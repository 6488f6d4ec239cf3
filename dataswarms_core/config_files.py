"""Reading a run configuration: a built-in name or a YAML file, plus command-line overrides, validated into a
:class:`~dataswarms_core.config.RunConfig`, every problem reported in one line naming the file (or the option)
and the field."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import RunConfig
from .errors import ConfigError

BUILTIN_CONFIGS = ("quickstart", "paper")


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters; an int too long to print (over Python's 4300 digits)
    becomes ``<an integer of about N digits>``."""
    if isinstance(value, int) and value.bit_length() > 10_000:  # repr would raise or be huge
        return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    text = repr(value)
    if len(text) <= limit:
        return text
    return (
        f"<an integer of {len(text.lstrip('-'))} digits>"
        if isinstance(value, int)
        else f"{text[: limit - 3]}..."
    )


def validation_message(origin: str, exc: ValidationError, overrides: dict[str, Any] | None = None) -> str:
    """One line for a pydantic error: ``origin: field.path: problem; got value (+N more)``. A field set by
    an override (a command-line option) is blamed on the option, not the file."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if any(v is not None and (loc == k or loc.startswith(k + ".")) for k, v in (overrides or {}).items()):
        origin = "command line"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    got = (
        f"; got {_short_repr(first['input'])}"
        if first["type"] != "missing" and not isinstance(first["input"], dict)
        else ""
    )
    msg = first["msg"]
    if first["type"] == "value_error":  # our validators' messages, without pydantic's "Value error, "
        msg = str(first.get("ctx", {}).get("error", msg))
    # A validator's message that starts with the field path (or a deeper one) is not prefixed twice; a
    # cross-field check of the whole file (no path) names its fields itself.
    if (loc and msg.startswith((f"{loc}.", f"{loc}:"))) or (not loc and first["type"] == "value_error"):
        where = ""
    else:
        where = f"{loc or '(top level)'}: "
    return f"{origin}: {where}{msg}{got}{more}"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
    node[parts[-1]] = value


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (line {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _extend(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """``extends: quickstart`` (a built-in) at the top of a file: the file's sections are merged over it, key by
    key (a list replaces the built-in's list)."""
    base = data.pop("extends")
    if base not in BUILTIN_CONFIGS:
        raise ConfigError(
            f"{origin}: extends: {base!r} is not a built-in configuration ({', '.join(BUILTIN_CONFIGS)})"
        )
    text = resources.files("dataswarms_core.configs").joinpath(f"{base}.yaml").read_text()
    return _merge(yaml.load(text, Loader=_UniqueKeyLoader) or {}, data)


def load_config(
    source: str | Path | None = "quickstart", overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Load a run configuration.

    Args:
        source: ``"quickstart"`` / ``"paper"`` (built-in), a YAML file path, or None for the field defaults. A
            file starting with ``extends: quickstart`` (or ``paper``) is merged over that built-in.
        overrides: dotted keys to set after loading, e.g. ``{"pso.max_iterations": 3, "seed": 1}``;
            None values are ignored.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown field or invalid value, naming file and field.
    """
    data: dict[str, Any] = {}
    origin = "defaults"
    if source is not None:
        origin = str(source)
        if str(source) in BUILTIN_CONFIGS:
            text = resources.files("dataswarms_core.configs").joinpath(f"{source}.yaml").read_text()
        else:
            path = Path(source)
            if path.is_dir():
                raise ConfigError(f"{source}: is a folder, expected a YAML file")
            if not path.is_file():
                raise ConfigError(
                    f"{source}: config file not found (give a YAML file or one of {', '.join(BUILTIN_CONFIGS)})"
                )
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#x} at {exc.start})"
                ) from None
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: invalid YAML ({str(exc).splitlines()[0]})") from exc
        except ValueError as exc:
            # A scalar YAML resolves but Python cannot build: an int over 4300 digits, the date 2020-13-45.
            raise ConfigError(
                f"{origin}: invalid YAML value ({str(exc).splitlines()[0].split(';')[0][:160]})"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{origin}: expected a mapping of sections at the top level, got {type(data).__name__}"
            )
    if "extends" in data:
        data = _extend(data, origin)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(origin, exc, overrides)) from None
