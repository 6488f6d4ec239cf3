"""A scripted fake :class:`~dataswarms_core.generation.GenerationBackend` for tests, in the style of
inspect_ai's ``mockllm``: no model, replies and next-token probabilities come from a script, and every
call is recorded for assertions.

Usage::

    from fakes import ScriptedBackend

    backend = ScriptedBackend({"g0": "1. A?", "g1": ["first reply", None]})  # per adapter
    backend = ScriptedBackend(["8", "great answer", None])  # one script for every adapter
    backend = ScriptedBackend(lambda request: f"echo {request.messages[-1]['content']}")
    backend = ScriptedBackend(probs=[[0.5, 0.5], [0.0, 1.0]])  # for next_token_probs
    ...
    call = backend.calls[0]  # Call(method="generate", requests=[...], kwargs={"temperature": ..., ...})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from dataswarms_core.generation import GenerationRequest

ReplyScript = str | None | Sequence[str | None] | Callable[[GenerationRequest], str | None]
"""How one adapter answers ``generate``: a fixed reply (``str``, or ``None`` for a failed request), a list of
replies consumed one per request in order, or a callable ``request -> str | None``."""

ProbsScript = Sequence[Sequence[float]] | torch.Tensor | Callable[[GenerationRequest, Sequence[int]], Any]
"""How one adapter answers ``next_token_probs``: rows (a list of lists or a 2-D tensor) consumed one per
request in order, or a callable ``(request, token_ids) -> row`` of ``len(token_ids)`` probabilities."""


class ScriptExhausted(AssertionError):
    """A list script ran out of replies (or probability rows): the code asked for more than the test planned."""


class ScriptedRequestError(RuntimeError):
    """A scripted ``None`` reply (a failed request) on a ``generate`` call without ``return_exceptions``."""


@dataclass
class Call:
    """One recorded call: ``method`` (``"generate"`` or ``"next_token_probs"``), the ``requests`` (a list,
    in order) and every keyword argument as the backend saw it, defaults included (``token_ids`` too, for
    ``next_token_probs``)."""

    method: str
    requests: list[GenerationRequest]
    kwargs: dict[str, Any] = field(default_factory=dict)


class _Script:
    """One script resolved to a "next answer for this request" function."""

    def __init__(self, script: Any, what: str, is_constant: Callable[[Any], bool]) -> None:
        self.what = what
        self.used = 0
        if callable(script):
            self._fn = script
        elif is_constant(script):
            self._fn = lambda *_: script
        else:
            self._items: Iterator[Any] = iter(list(script))
            self._fn = self._next

    def _next(self, *_: Any) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise ScriptExhausted(f"{self.what}: script exhausted after {self.used} answer(s)") from None

    def __call__(self, *args: Any) -> Any:
        out = self._fn(*args)
        self.used += 1
        return out


def _scripts(script: Any, what: str, is_constant: Callable[[Any], bool]) -> Callable[[str], _Script] | None:
    """Per-adapter scripts (a mapping) or one script shared by every adapter (anything else but None)."""
    if script is None:
        return None
    if isinstance(script, Mapping):
        per_adapter = {
            name: _Script(s, f"{what} for adapter {name!r}", is_constant) for name, s in script.items()
        }

        def lookup(adapter: str) -> _Script:
            if adapter not in per_adapter:
                raise AssertionError(
                    f"no {what} scripted for adapter {adapter!r}; scripted: {sorted(per_adapter)}"
                )
            return per_adapter[adapter]

        return lookup
    shared = _Script(script, what, is_constant)
    return lambda adapter: shared


class ScriptedBackend:
    """A fake generation backend answering from a script, recording every call.

    Args:
        replies: what ``generate`` answers. Either a mapping ``adapter name -> script`` (an adapter not in it
            is an error; the base model is ``"__base__"``), or one script shared by every adapter. A script
            is a ``str`` (the same reply every time), ``None`` in a mapping (that adapter's requests all
            fail), a list of replies
            consumed one per request in request order across calls (``None`` items are failed requests;
            running out raises :class:`ScriptExhausted`), or a callable ``request -> str | None``. Replies are
            returned as given, so a :class:`~dataswarms_core.generation.Reply` keeps its ``truncated``.
            Omitted: ``generate`` raises.
        probs: what ``next_token_probs`` answers, per adapter (a mapping) or shared, like ``replies``: rows
            (a list of lists or a 2-D tensor) consumed one per request, or a callable
            ``(request, token_ids) -> row``. Each row must have ``len(token_ids)`` entries. Omitted:
            ``next_token_probs`` raises.
        supports_reply_prefix: the backend attribute judges read (True like the local HF backend; False like
            an OpenAI-compatible endpoint, whose replies do not continue the request's ``reply_prefix``).

    A failed request (``None``) comes back as ``None`` when the caller passes ``return_exceptions=True`` and
    raises :class:`ScriptedRequestError` otherwise, like the endpoint backend. The fake answers all requests
    of a call at once: ``batch_size`` is only recorded.

    Attributes:
        calls: every call in order, as :class:`Call` (``method``, ``requests``, ``kwargs``).
    """

    def __init__(
        self,
        replies: ReplyScript | Mapping[str, ReplyScript] | None = None,
        *,
        probs: ProbsScript | Mapping[str, ProbsScript] | None = None,
        supports_reply_prefix: bool = True,
    ) -> None:
        self._replies = _scripts(replies, "replies", lambda s: s is None or isinstance(s, str))
        self._probs = _scripts(probs, "probs", lambda s: False)
        self.supports_reply_prefix = supports_reply_prefix
        self.calls: list[Call] = []

    @property
    def requests(self) -> list[GenerationRequest]:
        """Every request of every call, in order."""
        return [r for call in self.calls for r in call.requests]

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method (``"generate"`` or ``"next_token_probs"``)."""
        return [c for c in self.calls if c.method == method]

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        return_exceptions: bool = False,
    ) -> list[str | None]:
        """Scripted replies, one per request, in order (signature and defaults as ``HFBackend.generate``)."""
        requests = list(requests)
        self.calls.append(
            Call("generate", requests, {
                "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed,
                "batch_size": batch_size, "return_exceptions": return_exceptions,
            })
        )  # fmt: skip
        if self._replies is None:
            raise AssertionError("ScriptedBackend: generate() called but no replies were scripted")
        out = [self._replies(r.adapter)(r) for r in requests]
        failed = [i for i, reply in enumerate(out) if reply is None]
        if failed and not return_exceptions:
            raise ScriptedRequestError(f"scripted failure for request(s) {failed} (return_exceptions=False)")
        return out

    def next_token_probs(
        self, requests: Sequence[GenerationRequest], token_ids: Sequence[int], *, batch_size: int
    ) -> torch.Tensor:
        """Scripted probabilities, shape ``(len(requests), len(token_ids))``, float32."""
        requests = list(requests)
        self.calls.append(
            Call("next_token_probs", requests, {"token_ids": list(token_ids), "batch_size": batch_size})
        )
        if self._probs is None:
            raise AssertionError("ScriptedBackend: next_token_probs() called but no probs were scripted")
        rows = []
        for r in requests:
            row = torch.as_tensor(self._probs(r.adapter)(r, token_ids), dtype=torch.float32).flatten()
            if row.numel() != len(token_ids):
                raise AssertionError(
                    f"scripted probs row has {row.numel()} entries, expected {len(token_ids)}"
                )
            rows.append(row)
        return torch.stack(rows) if rows else torch.zeros(0, len(token_ids))
