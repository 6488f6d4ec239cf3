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
    (``truncated``) rather than at the end-of-turn token, so a cut-off last item can be dropped."""

    truncated: bool = False

    def __new__(cls, text: str, truncated: bool = False) -> Reply:
        obj = super().__new__(cls, text)
        obj.truncated = truncated
        return obj


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


class GenerationBackend(Protocol):
    """What synthesis and scoring need from a model backend. Backends are chosen by name from
    :data:`~dataswarms_core.backends.BACKENDS` (the local one by ``model.backend``; ``hf``: :class:`HFBackend`).
    """

    def generate(
        self, requests: Sequence[GenerationRequest], *, max_new_tokens: int, temperature: float, top_p: float,
        seed: int, batch_size: int, return_exceptions: bool = False,
    ) -> list[str | None]:  # fmt: skip
        """Sampled (or greedy, temperature 0) replies, one per request, in order. With
        ``return_exceptions`` a request that failed (e.g. at an endpoint) gives None instead of raising."""
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
        """The prompt text: chat template with the assistant turn opened, plus ``reply_prefix``."""
        text = self.tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=True
        )
        return text + request.reply_prefix

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        eos = getattr(self.model, "generation_config", None) and self.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
        return {int(i) for i in ids if i is not None}

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
