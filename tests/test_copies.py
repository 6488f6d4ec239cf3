"""Copy detection (docs/method.md §2, "Copies"): word n-gram containment computed by hand on short texts, each
kind of reference and their priority, the thresholds' boundaries, and the embedding path with the real
all-MiniLM-L6-v2 encoder."""

from __future__ import annotations

import numpy as np
import pytest

from dataswarms_core import copies
from dataswarms_core.config import CopyConfig
from dataswarms_core.copies import KINDS, CopyDetector, CopyMatch, ngram_containment

DEV = [
    "the cat sat on the mat today",  # 0
    "a dog ran far away from home",  # 1
    "Tom has 3 apples and buys 5 more. How many apples does Tom have now?",  # 2
]
TEST = ["birds fly south in the cold winter"]


def _detector(**kw) -> CopyDetector:
    kw.setdefault("embedding_threshold", None)
    return CopyDetector(DEV, TEST, **kw)


def test_containment_by_hand():
    c = ngram_containment(
        ["the cat sat on the mat", "THE CAT, SAT!", "the the the the", "new words only here"],
        ["the cat sat on a mat", "xx the cat sat"],
        3,
    ).toarray()
    # item 0 trigrams: the cat sat, cat sat on, sat on the, on the mat; ref 0 has the first two: 2/4
    # ref 1 has "the cat sat": 1/4
    assert c[0].tolist() == [0.5, 0.25]
    # case and punctuation do not count: "the cat sat" is in both references
    assert c[1].tolist() == [1.0, 1.0]
    # distinct n-grams: "the the the" once, not in the references
    assert c[2].tolist() == [0.0, 0.0]
    assert c[3].tolist() == [0.0, 0.0]
    unigrams = ngram_containment(["the cat sat on the mat"], ["the cat sat on a rug"], 1)
    assert unigrams.toarray()[0, 0] == 0.8  # 4 of 5 words


def test_containment_of_short_items_uses_the_ngrams_they_have():
    refs = ["the cat sat on the mat"]
    items = ["cat sat", "sat cat", "Mat", "dog", "? !", "the cat sat on"]
    c = ngram_containment(items, refs, 3).toarray()[:, 0]
    # 2 words: bigrams ("cat sat" is there, "sat cat" is not); 1 word: unigrams; no word: 0; 4 words: trigrams
    assert c.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert ngram_containment([], refs, 3).shape == (0, 1)
    assert ngram_containment(["x y z"], [], 3).shape == (1, 0)
    with pytest.raises(ValueError, match="ngram"):
        ngram_containment(["a b"], refs, 0)


def test_each_kind_fires_and_the_priority():
    d = _detector()
    found = d.find(
        [
            ("The cat sat on the mat today!", [0, 1]),  # shown (and dev): shown first
            ("The cat sat on the mat today", [1, 2]),  # not shown in its call: dev
            ("Birds fly south in the cold winter", [0]),  # test
            ("something new and quite different here", [0]),  # kept
            ("Something new and quite different here, again", [0]),  # items: 4 of its 5 trigrams in item 3
            ("a dog ran far away from home", []),  # dev; nothing shown
        ]
    )
    assert [m.kind if m else None for m in found] == ["shown", "dev", "test", None, "items", "dev"]
    assert found[0] == CopyMatch("shown", DEV[0], 0, 1.0, None)
    assert found[1].closest_index == 0 and found[2].closest == TEST[0] and found[2].closest_index == 0
    assert found[4] == CopyMatch("items", "something new and quite different here", 3, 0.8, None)
    assert found[5].closest_index == 1


def test_items_compares_with_earlier_kept_items_only():
    d = _detector(against=["items"], overlap_threshold=0.6)
    # item 1 copies item 0; item 2 has 2 of its 3 trigrams in items 0 and 1, but item 1, a copy, is no reference
    found = d.find([("one two three four", []), ("one two three four", []), ("one two three four five", [])])
    assert found[0] is None
    assert (found[1].kind, found[1].closest_index) == ("items", 0)
    assert (found[2].kind, found[2].closest_index, found[2].overlap) == ("items", 0, 2 / 3)
    # a reference kind that is not asked for never fires
    assert d.find([("the cat sat on the mat today", [0])]) == [None]


def test_against_restricts_the_references():
    item = [("The cat sat on the mat today", [0])]
    assert _detector(against=["dev"]).find(item)[0].kind == "dev"
    assert _detector(against=["test", "items"]).find(item) == [None]
    # against is applied in priority order whatever order it is given in
    assert _detector(against=["dev", "shown"]).against == ("shown", "dev")


@pytest.mark.parametrize(
    ("threshold", "is_copy"), [(0.75, True), (0.7500001, False), (0.5, True), (1.0, False)]
)
def test_overlap_threshold_is_inclusive(threshold, is_copy):
    # 3 of the item's 4 trigrams are in dev item 0: containment exactly 0.75
    d = _detector(overlap_threshold=threshold)
    (match,) = d.find([("the cat sat on the rug", [])])
    assert (match is not None) == is_copy
    if is_copy:
        assert match.overlap == 0.75 and match.kind == "dev"


def test_thresholds_and_kinds_are_checked():
    for kw, msg in [
        ({"ngram": 0}, "ngram"),
        ({"overlap_threshold": 0.0}, "overlap_threshold"),
        ({"overlap_threshold": 1.5}, "overlap_threshold"),
        ({"embedding_threshold": -1.0}, "embedding_threshold"),
        ({"against": []}, "against"),
        ({"against": ["dev", "train"]}, "against"),
    ]:
        with pytest.raises(ValueError, match=msg):
            _detector(**kw)
    with pytest.raises(IndexError, match="outside the 3 dev inputs"):
        _detector().find([("x", [3])])
    assert _detector().find([]) == []


def test_from_config():
    d = CopyDetector.from_config(CopyConfig(ngram=2, overlap_threshold=0.5, against=["test", "dev"]), DEV)
    assert (d.ngram, d.overlap_threshold, d.embedding_threshold, d.against) == (2, 0.5, 0.9, ("dev", "test"))
    assert d.dev == tuple(DEV) and d.test == ()
    default = CopyDetector.from_config(CopyConfig(), DEV, TEST)
    assert (default.ngram, default.overlap_threshold, default.against) == (3, 0.7, KINDS)


def test_ngram_only_never_loads_the_encoder(monkeypatch):
    def refuse(texts):
        raise AssertionError("the encoder must not run with embedding_threshold None")

    monkeypatch.setattr(copies, "embed_texts", refuse)
    monkeypatch.setattr(copies, "_reference_embeddings", refuse)
    (match,) = _detector().find([(DEV[2], [2])])
    assert match == CopyMatch("shown", DEV[2], 2, 1.0, None)


def test_embeddings_fire_on_a_paraphrase_and_are_cached(monkeypatch):
    """The real all-MiniLM-L6-v2: a paraphrase with few shared trigrams is a copy by its cosine; an unrelated
    sentence is not; the dev and test embeddings are computed once for any number of calls."""
    copies._reference_embeddings.cache_clear()
    paraphrase = "Tom owns three apples and purchases five more. How many apples does he have in total?"
    unrelated = "The train leaves the station at noon and travels north through the mountains."
    d = CopyDetector(DEV, TEST, embedding_threshold=0.95)
    found = d.find([(paraphrase, [0]), (unrelated, [0])])
    match = found[0]
    assert match is not None and match.kind == "dev" and match.closest_index == 2
    assert match.overlap == pytest.approx(3 / 14)  # "how many apples", "many apples does", "more how many"
    assert match.cosine == pytest.approx(0.959, abs=0.01)
    assert found[1] is None
    cosines = copies.embed_texts([unrelated]) @ copies.embed_texts(DEV + TEST).T
    assert float(cosines.max()) < 0.3
    assert copies.embed_texts([paraphrase, DEV[2]]).shape == (2, 384)
    # a threshold just above the paraphrase's cosine keeps it
    assert CopyDetector(DEV, TEST, embedding_threshold=0.97).find([(paraphrase, [])]) == [None]
    # both measures fire on a verbatim copy: the overlap's closest reference, with its cosine
    (verbatim,) = d.find([(DEV[1], [])])
    assert verbatim.overlap == 1.0 and verbatim.cosine == pytest.approx(1.0, abs=1e-5)
    info = copies._reference_embeddings.cache_info()
    assert info.misses == 2 and info.hits >= 4  # dev and test: embedded once each
    assert not copies._reference_embeddings(tuple(DEV)).flags.writeable
    np.testing.assert_allclose(np.linalg.norm(copies.embed_texts(DEV), axis=1), 1.0, atol=1e-5)


def test_reference_embeddings_are_kept_on_disk_bit_for_bit(monkeypatch, tmp_path):
    """A second process (an empty in-memory cache) reads the dev embeddings from $DATASWARMS_HOME/embeddings
    instead of encoding them again, with the same bits; a damaged file is computed again."""
    monkeypatch.setenv("DATASWARMS_HOME", str(tmp_path))
    copies._reference_embeddings.cache_clear()
    first = copies._reference_embeddings(tuple(DEV))
    (saved,) = (tmp_path / "embeddings").glob("*.npy")
    copies._reference_embeddings.cache_clear()
    real = copies.embed_texts

    def refuse(texts):
        raise AssertionError("encoded again")

    monkeypatch.setattr(copies, "embed_texts", refuse)
    again = copies._reference_embeddings(tuple(DEV))
    assert again.tobytes() == first.tobytes() and not again.flags.writeable
    with pytest.raises(AssertionError, match="encoded again"):  # other texts: another key
        copies._reference_embeddings(tuple(TEST))
    saved.write_bytes(b"not an array")
    copies._reference_embeddings.cache_clear()
    monkeypatch.setattr(copies, "embed_texts", real)
    assert copies._reference_embeddings(tuple(DEV)).tobytes() == first.tobytes()
    copies._reference_embeddings.cache_clear()


def test_earlier_items_are_references_of_kind_items():
    """Items kept before (an earlier sampling round) are compared with too; indices count in earlier + items."""
    earlier = ["the red train leaves at noon every day", "a blue boat sails on the lake"]
    found = _detector().find(
        [("the red train leaves at noon every day, right", []), ("an owl hoots in the dark wood", [])],
        earlier=earlier,
    )
    assert found[1] is None
    assert (found[0].kind, found[0].closest_index, found[0].closest) == ("items", 0, earlier[0])
    assert found[0].overlap == pytest.approx(6 / 7)  # 6 of its 7 word trigrams occur in earlier[0]
    later = _detector().find([("an owl hoots in the dark wood", []), ("an owl hoots in the dark wood again", [])],
                             earlier=earlier)  # fmt: skip
    assert later[0] is None and (later[1].kind, later[1].closest_index) == ("items", 2)  # position 2: items[0]
