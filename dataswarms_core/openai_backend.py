"""A :class:`~dataswarms_core.generation.GenerationBackend` over an OpenAI-compatible chat-completions
endpoint (OpenAI, vLLM, llama.cpp's server, ``transformers serve``), with the ``openai`` client.

Usable as a test taker and as a generative judge; registered as the ``openai`` endpoint backend in
:data:`~dataswarms_core.backends.BACKENDS` (built by :func:`~dataswarms_core.backends.endpoint_backend`).
The API key is read from the environment variable named in the configuration and is never logged or
written. Transient failures (connection errors, timeouts,
408/409/429/5xx) are retried by the client with exponential backoff (``max_retries``); requests run
``concurrency`` at a time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import DataSwarmsError, is_transient_error
from .generation import GenerationRequest, Reply
from .seeding import derive_seed


class EndpointError(DataSwarmsError):
    """An endpoint request failed after the client's retries.

    Attributes:
        transient: whether retrying later may help (connection failures, timeouts, 429, 5xx) — Prefect
            retries the task then — or not (e.g. 400/404: wrong model name, bad request).
    """

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


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
    ) -> str:
        if request.adapter not in ("__base__", self.name):
            raise ValueError(f"endpoint model {self.config.model}: cannot serve adapter {request.adapter!r}")
        response = self.client.chat.completions.create(
            model=self.config.model,
            messages=list(request.messages),
            max_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )
        choice = response.choices[0]
        return Reply((choice.message.content or "").strip(), truncated=choice.finish_reason == "length")

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
            return_exceptions: give None for a request that failed after the retries instead of raising.

        Raises:
            EndpointError: a request failed after the retries (naming the endpoint, model and error).
        """
        from openai import OpenAIError

        def call(pair: tuple[int, GenerationRequest]) -> str | None:
            i, request = pair
            try:
                return self._one(request, max_new_tokens, temperature, top_p, derive_seed(seed, i) % 2**31)
            except OpenAIError as exc:
                if return_exceptions:
                    return None
                raise EndpointError(
                    f"endpoint {self.config.base_url} model {self.config.model}: {type(exc).__name__}: {exc}",
                    transient=is_transient_error(exc),
                ) from exc

        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(call, enumerate(requests)))
