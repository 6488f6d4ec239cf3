"""Registries of pluggable parts (objectives, judges, backends), chosen by name from the configuration.

Each part registers itself where it is defined, in the style of peft's ``register_peft_method`` and
inspect_ai's ``@scorer``::

    @OBJECTIVES.register("difficulty", source="docs/method.md §4", summary="1 − max_t m[g, t]", lowest=0.0)
    def _difficulty(inputs: ObjectiveInputs) -> np.ndarray: ...

An :class:`Entry` says what a part is (its name, the section of docs/method.md it implements, one line of
summary), what it needs from the run (``needs``, a family-specific vocabulary), which configuration fields it
reads (``options``) and family-specific facts (``extra``). Configuration validation, the stage layer and the
README read these entries instead of keeping lists of their own. An unknown name fails with the list of
known ones.

``python -m dataswarms_core.registry --readme README.md`` rewrites the README's generated tables (between
``<!-- registry:objectives -->`` and ``<!-- /registry:objectives -->``, likewise ``judges`` and ``backends``);
``--check`` only reports whether they are current.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


class UnknownNameError(ConfigError):
    """A name that no entry of a registry has.

    Attributes:
        family: the registry's family (``"objective"``, ``"judge"``, ``"backend"``).
        name: the name asked for.
        known: the registered names, in registration order.
    """

    def __init__(self, family: str, name: str, known: Iterable[str]) -> None:
        self.family, self.name, self.known = family, name, list(known)
        super().__init__(f"unknown {family} {name!r}; known: {', '.join(self.known) or '(none)'}")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered part.

    Attributes:
        name: its configuration name (``^[a-z][a-z0-9_-]*$``).
        impl: the factory or callable (an objective function, a judge factory, a backend factory).
        source: where the method is described, e.g. ``"docs/method.md §4"``.
        summary: one line for docs and help.
        needs: what it needs from the run (the family's vocabulary, e.g. ``"reference_scores"``).
        options: the configuration fields it reads (dotted, e.g. ``"scoring.consistency_sets"``).
        extra: family-specific facts (an objective's ``lowest`` value, a backend's ``kind``), read-only.
    """

    name: str
    impl: T
    source: str
    summary: str
    needs: frozenset[str] = frozenset()
    options: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _describe(impl: Any) -> str:
    return f"{getattr(impl, '__module__', '?')}.{getattr(impl, '__qualname__', repr(impl))}"


class Registry(Generic[T]):
    """Named entries of one family, in registration order.

    Args:
        family: what the entries are (``"objective"``, ``"judge"``, ``"backend"``), used in messages.
        known_needs: the family's ``needs`` vocabulary (need → what it means); when given, an entry
            declaring another need is refused (a misspelt need would otherwise be silently ignored).
    """

    def __init__(self, family: str, *, known_needs: Mapping[str, str] | None = None) -> None:
        self.family = family
        self.known_needs = MappingProxyType(dict(known_needs)) if known_needs is not None else None
        self._entries: dict[str, Entry[T]] = {}

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, names={self.names()})"

    def register(
        self,
        name: str,
        *,
        source: str,
        summary: str,
        needs: Iterable[str] = (),
        options: Iterable[str] = (),
        **extra: Any,
    ) -> Callable[[T], T]:
        """A decorator registering a function or class under ``name``; it returns the object unchanged.

        Args:
            name: the configuration name, matching ``^[a-z][a-z0-9_-]*$``.
            source, summary, needs, options: see :class:`Entry`.
            **extra: family-specific facts, stored in :attr:`Entry.extra`.

        Raises:
            ValueError: a badly formed name or summary, an unknown need, or a name registered already
                (naming both the registered and the new object).
        """
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"{self.family} name {name!r} is badly formed: use lower-case letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if not summary or "\n" in summary:
            raise ValueError(f"{self.family} {name!r}: the summary must be one non-empty line")
        needs = frozenset(needs)
        if self.known_needs is not None and needs - set(self.known_needs):
            raise ValueError(
                f"{self.family} {name!r}: unknown need(s) {sorted(needs - set(self.known_needs))}; "
                f"known: {', '.join(self.known_needs)}"
            )

        def decorator(impl: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"{self.family} {name!r} is registered already (by "
                    f"{_describe(self._entries[name].impl)}); cannot register {_describe(impl)} under the "
                    "same name"
                )
            self._entries[name] = Entry(
                name, impl, source, summary, needs, tuple(options), MappingProxyType(dict(extra))
            )
            return impl

        return decorator

    def get(self, name: str) -> Entry[T]:
        """The entry named ``name``.

        Raises:
            UnknownNameError: no such entry (the message lists the known names).
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.family, name, self._entries) from None

    def unregister(self, name: str) -> Entry[T]:
        """Remove and return an entry (for tests that register temporary ones).

        Raises:
            UnknownNameError: no such entry.
        """
        entry = self.get(name)
        del self._entries[name]
        return entry

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        """The registered entries, in registration order."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)

    def markdown_table(self) -> str:
        """A Markdown table of the entries (name | summary | needs | source), for the README."""

        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| name | summary | needs | source |", "| --- | --- | --- | --- |"]
        for e in self._entries.values():
            needs = ", ".join(f"`{n}`" for n in sorted(e.needs)) or "—"
            lines.append(f"| `{e.name}` | {cell(e.summary)} | {cell(needs)} | {e.source} |")
        return "\n".join(lines)

    def markdown_needs(self) -> str:
        """One Markdown line explaining the family's ``needs`` vocabulary ("" without a vocabulary)."""
        if not self.known_needs:
            return ""
        return "Needs: " + "; ".join(f"`{n}`: {text}" for n, text in self.known_needs.items()) + "."

    def readme_block(self) -> str:
        """What the README holds between this family's markers: :meth:`markdown_table`, then
        :meth:`markdown_needs` when there is a vocabulary."""
        return "\n\n".join(part for part in (self.markdown_table(), self.markdown_needs()) if part)


# -- the README's generated tables ---------------------------------------------------------------------------
def readme_registries() -> dict[str, Registry[Any]]:
    """README marker name → registry: ``objectives``, ``judges``, ``backends``, ``searches`` (imports the
    families)."""
    from .backends import BACKENDS
    from .baselines import SEARCHES
    from .judges import JUDGES
    from .objectives import OBJECTIVES

    return {"objectives": OBJECTIVES, "judges": JUDGES, "backends": BACKENDS, "searches": SEARCHES}


def _block(marker: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- registry:{marker} -->\n)(.*?)(<!-- /registry:{marker} -->)", re.DOTALL)


def readme_block(text: str, marker: str) -> str | None:
    """The content between ``<!-- registry:MARKER -->`` and ``<!-- /registry:MARKER -->`` (without the final
    newline), or None when the markers are missing."""
    match = _block(marker).search(text)
    return match.group(2).rstrip("\n") if match else None


def update_readme(text: str) -> str:
    """``text`` with every generated block replaced by its registry's current :meth:`Registry.readme_block`.

    Raises:
        ValueError: a marker pair is missing.
    """
    for marker, registry in readme_registries().items():
        if readme_block(text, marker) is None:
            raise ValueError(f"README: no <!-- registry:{marker} --> ... <!-- /registry:{marker} --> block")
        block = registry.readme_block()
        text = _block(marker).sub(lambda m, b=block: f"{m.group(1)}{b}\n{m.group(3)}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m dataswarms_core.registry --readme README.md [--check]``: rewrite (or check) the README's
    generated tables. Returns the exit status (1: ``--check`` found an outdated table)."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m dataswarms_core.registry", description=main.__doc__)
    parser.add_argument("--readme", type=Path, required=True, help="the README to update")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when a table is outdated")
    args = parser.parse_args(argv)
    old = args.readme.read_text(encoding="utf-8")
    new = update_readme(old)
    if args.check:
        if new != old:
            print(f"{args.readme}: generated tables are outdated; run without --check", file=sys.stderr)
        return int(new != old)
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
