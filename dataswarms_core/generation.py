"""The Hugging Face generation backend: one loaded base model, many LoRA adapters, batched across adapters.

Rows of one batch may use different adapters (PEFT's ``adapter_names``; ``"__base__"`` = no adapter), so all
generators or all test takers share every ``generate()`` call instead of loading a model per generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .adapters import BASE
from .seeding import derive_seed


class Reply(str):
    """A generated reply: a ``str`` that also says whether generation stopped at the token limit
    (``truncated``) rather than at the end-of-turn token, so a cut-off last item can be dropped.

    A reply that is not the model's answer (an endpoint answered, but with no usable text: no choices, a
    null message or content, a refusal, a content filter, an error object, a body that is not JSON) is a
    *failed reply*: empty text and ``failure`` set to ``"<kind>: <detail>"`` (e.g. ``"no_choices: the
    response has no choices"``). Backends return failed replies only under ``return_exceptions=True``; see
    :meth:`GenerationBackend.generate` and :func:`reply_failure`.
    """

    truncated: bool = False
    failure: str | None = None

    def __new__(cls, text: str, truncated: bool = False, failure: str | None = None) -> Reply:
        obj = super().__new__(cls, text)
        obj.truncated = truncated
        obj.failure = failure
        return obj

    @classmethod
    def failed(cls, reason: str) -> Reply:
        """A failed reply: empty text, ``failure=reason``."""
        return cls("", failure=reason)


REQUEST_FAILED = "request_failed: the request failed after the client's retries (no response)"
"""The failure reason :func:`reply_failure` gives a ``None`` reply (a failed request)."""


def reply_failure(reply: str | None) -> str | None:
    """Why a reply from ``generate(..., return_exceptions=True)`` is not an answer, or None when it is one.

    ``None`` (the request failed: connection, timeout, HTTP error after retries) gives
    :data:`REQUEST_FAILED`; a failed :class:`Reply` gives its ``failure``. An empty string from a model that
    finished normally IS an answer (None here).
    """
    if reply is None:
        return REQUEST_FAILED
    return getattr(reply, "failure", None)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat prompt for one adapter.

    Attributes:
        messages: chat turns (``[{"role": "user", "content": ...}]``), wrapped in the chat template.
        adapter: adapter name, or ``"__base__"`` for the base model.
        reply_prefix: text appended after the assistant turn opens (the reply continues it).
    """

    messages: tuple[dict[str, str], ...] | list[dict[str, str]]
    adapter: str = BASE
    reply_prefix: str = ""


def render_prompt(tokenizer: Any, request: GenerationRequest) -> str:
    """A request's prompt text: the chat template with the assistant turn opened, plus ``reply_prefix``
    (tokenise it without added special tokens). Every local backend renders prompts this way."""
    text = tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
    return text + request.reply_prefix


def stop_token_ids(tokenizer: Any, generation_eos: Any = None) -> set[int]:
    """The token ids that end a reply: pad, EOS and the generation config's EOS id(s) (an int or a list)."""
    ids = {tokenizer.pad_token_id, tokenizer.eos_token_id}
    ids.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
    return {int(i) for i in ids if i is not None}


class GenerationBackend(Protocol):
    """What synthesis and scoring need from a model backend. Backends are chosen by name from
    :data:`~dataswarms_core.backends.BACKENDS` (the local one by ``model.backend``; ``hf``: :class:`HFBackend`).
    """

    def generate(
        self, requests: Sequence[GenerationRequest], *, max_new_tokens: int, temperature: float, top_p: float,
        seed: int, batch_size: int, return_exceptions: bool = False,
    ) -> list[str | None]:  # fmt: skip
        """Sampled (or greedy, temperature 0) replies, one per request, in order.

        Without ``return_exceptions`` any failure raises. With it, one request's failure never fails the
        batch; it comes back in its place as:

        - ``None``: the request itself failed (no response after the client's retries: connection refused,
          timeout, HTTP 4xx/5xx). Callers may treat it as a transport failure (the generative judge raises a
          transient error when a judgement never got any response);
        - a failed :class:`Reply` (empty text, ``failure`` = ``"<kind>: <detail>"``): the endpoint answered
          but not with the model's answer (no choices, null message or content, refusal, content filter,
          error object, a body that is not JSON). Code that only checks ``is None`` sees an empty reply.

        :func:`reply_failure` gives the reason for both (None for a real reply, which may be empty).
        """
        ...

    def next_token_probs(
        self, requests: Sequence[GenerationRequest], token_ids: Sequence[int], *, batch_size: int
    ) -> torch.Tensor:
        """Probabilities (len(requests), len(token_ids)) of the given tokens at the reply's next position."""
        ...


class HFBackend:
    """:class:`GenerationBackend` over a transformers (optionally PEFT-wrapped) causal LM.

    Args:
        model: a causal LM or a ``peft.PeftModel`` holding the adapters named in requests.
        tokenizer: its tokenizer with left padding and a pad token (see ``models.load_tokenizer``).
    """

    supports_reply_prefix = True  # the prompt text is ours: a reply can be opened with a prefix

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.is_peft = hasattr(model, "peft_config")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, request: GenerationRequest) -> str:
        """The prompt text (:func:`render_prompt`)."""
        return render_prompt(self.tokenizer, request)

    def _stop_ids(self) -> set[int]:
        eos = getattr(self.model, "generation_config", None) and self.model.generation_config.eos_token_id
        return stop_token_ids(self.tokenizer, eos)

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in enc.items()}

    def _adapter_kwargs(self, requests: Sequence[GenerationRequest]) -> dict[str, Any]:
        names = [r.adapter for r in requests]
        if not self.is_peft:
            if any(n != BASE for n in names):
                raise ValueError(
                    f"adapters {sorted(set(names) - {BASE})} requested from a model without adapters"
                )
            return {}
        return {"adapter_names": names}

    @torch.inference_mode()
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
    ) -> list[str]:
        """Generate one reply per request, ``batch_size`` rows per ``generate()`` call, in order
        (``return_exceptions`` is accepted for the protocol; a local model fails per batch, not per request).

        Batch b samples after ``torch.manual_seed(derive_seed(seed, "batch", b))``, so the output depends
        only on the requests, the settings and ``seed``. ``temperature == 0`` decodes greedily.

        Returns:
            :class:`Reply` strings without the prompt and special tokens, stripped; ``truncated`` when a
            row ended at ``max_new_tokens`` without an end-of-turn token.
        """
        replies: list[str] = []
        for b, start in enumerate(range(0, len(requests), batch_size)):
            chunk = requests[start : start + batch_size]
            enc = self._encode([self.render(r) for r in chunk])
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature, "top_p": top_p}
                if temperature > 0
                else {"do_sample": False}
            )
            torch.manual_seed(derive_seed(seed, "batch", b))
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
                **self._adapter_kwargs(chunk),
            )
            new = out[:, enc["input_ids"].shape[1] :]  # (batch, new tokens); finished rows are padded
            stop = torch.tensor(sorted(self._stop_ids()), device=new.device)
            ended = torch.isin(new, stop).any(dim=1).tolist()
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            replies.extend(Reply(t.strip(), truncated=not e) for t, e in zip(texts, ended, strict=True))
        return replies

    @torch.inference_mode()
    def next_token_probs(
        self, requests: Sequence[GenerationRequest], token_ids: Sequence[int], *, batch_size: int = 16
    ) -> torch.Tensor:
        """One forward pass per batch; softmax over the whole vocabulary at the last prompt position.

        Returns:
            float32 tensor (len(requests), len(token_ids)) of probabilities (rows sum to ≤ 1).
        """
        rows = []
        ids = torch.tensor(list(token_ids))
        for start in range(0, len(requests), batch_size):
            chunk = requests[start : start + batch_size]
            enc = self._encode([self.render(r) for r in chunk])
            # Left padding: give real tokens positions 0..len-1 so every row sees the same positions.
            position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            out = self.model(
                **enc, position_ids=position_ids, logits_to_keep=1, **self._adapter_kwargs(chunk)
            )
            logits = out.logits[:, -1, :]  # (batch, vocab): only the last position is computed
            probs = torch.softmax(logits.float(), dim=-1)  # (batch, vocab)
            rows.append(probs[:, ids.to(probs.device)].cpu())
        return torch.cat(rows) if rows else torch.empty(0, len(ids))
