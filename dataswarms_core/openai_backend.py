"""A :class:`~dataswarms_core.generation.GenerationBackend` over an OpenAI-compatible chat-completions
endpoint (OpenAI, vLLM, llama.cpp's server, ``transformers serve``), with the ``openai`` client.

Usable as a test taker and as a generative judge; registered as the ``openai`` endpoint backend in
:data:`~dataswarms_core.backends.BACKENDS` (built by :func:`~dataswarms_core.backends.endpoint_backend`).
The API key is read from the environment variable named in the configuration and is never logged or
written. Transient failures (connection errors, timeouts,
408/409/429/5xx) are retried by the client with exponential backoff (``max_retries``); requests run
``concurrency`` at a time.

Replies that are not ordinary are per-request failures, never empty answers (see
:func:`parse_chat_completion`): with ``return_exceptions=True`` they come back as failed
:class:`~dataswarms_core.generation.Reply` objects carrying the reason, and the rest of the batch goes on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import DataSwarmsError, is_transient_error
from .generation import GenerationRequest, Reply
from .seeding import derive_seed

log = logging.getLogger(__name__)


class EndpointError(DataSwarmsError):
    """An endpoint request failed after the client's retries.

    Attributes:
        transient: whether retrying later may help (connection failures, timeouts, 429, 5xx) — Prefect
            retries the task then — or not (e.g. 400/404: wrong model name, bad request).
    """

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class _BadReply(Exception):
    """The endpoint answered, but not with the model's answer (kind, detail, whether retrying may help)."""

    def __init__(self, kind: str, detail: str, transient: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.reason = f"{kind}: {detail}"
        self.transient = transient


def _snippet(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _error_transient(error: Any) -> bool:
    """Whether an error object in a 200 body looks like overload / rate limiting (408/409/429/5xx)."""
    if not isinstance(error, dict):
        return False
    for key in ("code", "status", "status_code"):
        value = error.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and (value in (408, 409, 429) or value >= 500):
            return True
    return False


def _content_text(content: Any, finish: Any) -> str:
    """The reply text of ``message.content``: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if content is None:
        raise _BadReply("no_content", f"choices[0].message.content is null (finish_reason {finish!r})")
    if isinstance(content, list):
        texts, others = [], []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "refusal":
                raise _BadReply("refusal", f"the model refused: {_snippet(part.get('refusal'))}")
            elif (
                isinstance(part, dict)
                and part.get("type", "text") in ("text", "output_text")
                and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
            else:
                others.append(part.get("type") if isinstance(part, dict) else type(part).__name__)
        if others and not texts:
            raise _BadReply("no_text_parts", f"message.content has no text part (parts: {others})")
        return "".join(texts)
    raise _BadReply("bad_content", f"message.content is a {type(content).__name__}: {_snippet(content)}")


def _parse(body: str, content_type: str) -> Reply:
    try:
        data = json.loads(body)
    except ValueError:
        raise _BadReply(
            "non_json_body",
            f"the 200 response ({content_type or 'no content type'}) is not JSON: {_snippet(body)}",
        ) from None
    if not isinstance(data, dict):
        raise _BadReply("not_an_object", f"the response is a JSON {type(data).__name__}, not an object")
    error = data.get("error")
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise _BadReply(
            "error_object", f"the 200 response holds an error: {_snippet(message)}", _error_transient(error)
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _BadReply("no_choices", f"the response has no choices (choices: {_snippet(choices, 40)})")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise _BadReply("bad_choice", f"choices[0] is a {type(choice).__name__}, not an object")
    finish = choice.get("finish_reason")
    message = choice.get("message")
    if finish == "content_filter":
        raise _BadReply(
            "content_filter",
            "the endpoint's content filter withheld the reply (finish_reason 'content_filter')",
        )
    if not isinstance(message, dict):
        what = "null" if message is None else f"a {type(message).__name__}"
        raise _BadReply("no_message", f"choices[0].message is {what} (finish_reason {finish!r})")
    if message.get("refusal"):
        raise _BadReply("refusal", f"the model refused: {_snippet(message['refusal'])}")
    text = _content_text(message.get("content"), finish)
    return Reply(text.strip(), truncated=finish == "length")


def parse_chat_completion(body: str, content_type: str = "application/json") -> Reply:
    """The reply in a chat-completions response body (HTTP 200), or a failed :class:`Reply` saying why
    there is none.

    The reply is ``choices[0].message.content`` stripped (``truncated`` when ``finish_reason`` is
    ``"length"``); a content given as a list of content parts gives its text parts joined (``"text"`` /
    ``"output_text"`` parts and plain strings; image and other parts are skipped). An empty or whitespace
    content from a model that finished normally IS its answer: ``Reply("")``, not a failure.

    Failures (``Reply.failure`` = ``"<kind>: <detail>"``), by kind:

    - ``non_json_body``: the body is not JSON (an HTML page from a proxy); ``not_an_object``: JSON, not an
      object;
    - ``error_object``: the body holds a non-empty ``error`` (some servers answer 200 with an error);
    - ``no_choices``: ``choices`` missing, null, not a list or empty; ``bad_choice``: ``choices[0]`` is not
      an object;
    - ``content_filter``: ``finish_reason`` is ``"content_filter"``, even with partial content (a filtered
      reply is not the model's answer);
    - ``no_message``: ``message`` missing or null; ``refusal``: ``message.refusal`` set (or a refusal content
      part);
    - ``no_content``: ``message.content`` missing or null (e.g. ``finish_reason`` ``"tool_calls"``);
      ``no_text_parts``: content parts without any text; ``bad_content``: content of another type.
    """
    try:
        return _parse(body, content_type)
    except _BadReply as bad:
        return Reply.failed(bad.reason)


class OpenAIBackend:
    """Chat completions on one endpoint model.

    Args:
        config: an :class:`~dataswarms_core.config.EndpointConfig` (``base_url``, ``model``,
            ``api_key_env``, ``timeout`` seconds, ``max_retries``, ``concurrency``).
        name: how requests address this model (``GenerationRequest.adapter``); ``"__base__"`` is accepted
            too.

    Notes:
        ``reply_prefix`` cannot be sent through the chat API: it is dropped, and callers parse the full
        reply. ``seed`` is sent per request (``derive_seed(seed, index)``); whether the server honours it
        depends on the server (OpenAI: best effort; vLLM and llama.cpp: yes).
    """

    supports_reply_prefix = False  # the chat API takes messages only

    def __init__(self, config: Any, name: str = "__base__") -> None:
        from openai import OpenAI

        self.config = config
        self.name = name
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        if config.api_key_env and not key:
            raise EndpointError(
                f"endpoint {config.base_url}: environment variable {config.api_key_env} is not set",
                transient=False,
            )
        self.client = OpenAI(
            base_url=config.base_url,
            api_key=key or "not-needed",
            timeout=config.timeout,
            max_retries=config.max_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.config.base_url!r}, model={self.config.model!r})"

    def _one(
        self, request: GenerationRequest, max_new_tokens: int, temperature: float, top_p: float, seed: int
    ) -> Reply:
        """One request; the raw body is parsed here (:func:`parse_chat_completion`) so that an unusual body
        is a per-request failure (:class:`_BadReply`) instead of an IndexError or AttributeError."""
        if request.adapter not in ("__base__", self.name):
            raise ValueError(f"endpoint model {self.config.model}: cannot serve adapter {request.adapter!r}")
        raw = self.client.chat.completions.with_raw_response.create(
            model=self.config.model,
            messages=list(request.messages),
            max_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )
        http = raw.http_response
        return _parse(http.text, http.headers.get("content-type", ""))

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
        """One reply per request, in order, ``concurrency`` requests at a time (``batch_size`` is unused).

        Args:
            return_exceptions: one request's failure does not fail the batch: a request that failed after
                the retries (connection, timeout, HTTP error) gives None; a response that is not an ordinary
                reply (see :func:`parse_chat_completion`) gives a failed :class:`Reply` with its reason.

        Raises:
            EndpointError: without ``return_exceptions``, a request failed after the retries or its response
                was not an ordinary reply (naming the endpoint, model and error or reason).
        """
        from openai import OpenAIError

        where = f"endpoint {self.config.base_url} model {self.config.model}"

        def call(pair: tuple[int, GenerationRequest]) -> str | None:
            i, request = pair
            try:
                return self._one(request, max_new_tokens, temperature, top_p, derive_seed(seed, i) % 2**31)
            except OpenAIError as exc:
                if return_exceptions:
                    log.warning("%s: request %d failed: %s: %s", where, i, type(exc).__name__, exc)
                    return None
                raise EndpointError(
                    f"{where}: {type(exc).__name__}: {exc}", transient=is_transient_error(exc)
                ) from exc
            except _BadReply as bad:
                if return_exceptions:
                    log.warning("%s: request %d got no answer: %s", where, i, bad.reason)
                    return Reply.failed(bad.reason)
                raise EndpointError(f"{where}: {bad.reason}", transient=bad.transient) from None

        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(call, enumerate(requests)))
