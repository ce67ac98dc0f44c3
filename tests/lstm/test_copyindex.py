import json
import random
import re
import time
import unicodedata
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from lstm.copyindex import CopyIndex

SHAKESPEARE = Path("/work/shared/data/shakespeare.txt")
TROTH = "I will not, by my troth, go hence tonight without thee."
# Long words and no spaces to speak of: 40 characters of it hold at most 4 words, so only the char rule can fire.
LONG_WORDS = "Supercalifragilistic expialidocious antidisestablishmentarianism floccinaucinihilipilification"


def test_seven_words_in_order_are_caught_whatever_the_case_and_punctuation():
    index = CopyIndex.build([TROTH, "Another post about something else entirely."])
    assert index.copied_span("well... i WILL NOT -- By My Troth!! go, hence") == "i will not by my troth go"
    assert index.copies("so: i will NOT by my troth... go")
    assert index.copied_span("so: i will NOT by my troth and stay") is None  # 6 words
    assert index.copied_span("i will not by my go troth") is None  # the 7 words, not in order


def test_a_run_across_two_texts_is_not_a_copy():
    first = "alpha bravo charlie delta echo foxtrot golf hotel"
    second = "india juliet kilo lima mike november oscar"
    index = CopyIndex.build([first, second])
    assert index.copies("golf hotel india juliet kilo lima mike") is False  # 2 words of one post + 5 of the next
    assert index.copies("alpha bravo charlie delta echo foxtrot golf") is True

    # Chars: two 26-character posts; their 52 concatenated characters hold 40-char windows only across the seam.
    first, second = "Qwertyuiopasdfghjklzxcvbnm", "Mnbvcxzlkjhgfdsapoiuytrewq"
    assert CopyIndex.build([first, second]).copied_span(first + second) is None
    assert CopyIndex.build([first + second]).copied_span(first + second) == (first + second)[:40]


def test_forty_verbatim_characters_are_caught_thirty_nine_are_not():
    index = CopyIndex.build([LONG_WORDS])
    assert "#" not in LONG_WORDS  # so the characters around the copied part cannot extend the match
    assert index.copied_span("#" + LONG_WORDS[10:50] + "#") == LONG_WORDS[10:50]
    assert index.copied_span("#" + LONG_WORDS[10:49] + "#") is None
    assert index.copied_span("#" + LONG_WORDS[10:50].upper() + "#") is None  # characters are compared exactly


def test_precomposed_and_decomposed_accents_match():
    text = "Le café était très bon, et la crème brûlée aussi était parfaite."
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    chars_only = CopyIndex.build([text], words=50)
    assert chars_only.copied_span(decomposed[:50]) == text[:40]
    assert CopyIndex.build([decomposed], words=50).copies(text[:50])
    words_only = CopyIndex.build([text], chars=1000)
    assert words_only.copied_span("»" + decomposed.upper()) == "le café était très bon et la"


def test_empty_corpus_short_texts_and_empty_candidates():
    empty = CopyIndex.build([])
    assert len(empty.word_hashes) == len(empty.char_hashes) == 0
    assert empty.copied_span(TROTH) is None and empty.copied_span("") is None
    short = ["", "hi", "six words are not enough here", "x" * 39]
    index = CopyIndex.build(short)
    assert len(index.word_hashes) == len(index.char_hashes) == 0
    for text in short:
        assert index.copied_span(text) is None
    assert CopyIndex.build([TROTH]).copied_span("") is None


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="words must be an integer >= 2"):
        CopyIndex.build([TROTH], words=1)
    with pytest.raises(ValueError, match="chars must be an integer >= 8"):
        CopyIndex.build([TROTH], chars=7)


def test_hashes_are_stable_across_processes():
    # The index lives in checkpoints, so a word or character window must hash the same in every process
    # (Python's hash() of a str is salted per process). Changing these values needs a new SCHEME.
    assert int(CopyIndex.build(["a b"], words=2, chars=8).word_hashes[0]) == 17600707320206839748
    assert int(CopyIndex.build(["abcdefgh"], words=2, chars=8).char_hashes[0]) == 854718724081853754


CANDIDATES = [
    TROTH.upper(),
    "nothing to see here at all, just some new words",
    "#" + LONG_WORDS[5:45] + "#",
    "#" + LONG_WORDS[5:44] + "#",
    "",
]


def _answers(index):
    return [index.copied_span(text) for text in CANDIDATES]


@pytest.mark.parametrize("corpus", [[TROTH, LONG_WORDS], []], ids=["corpus", "empty"])
def test_round_trip_through_arrays_and_orbax(tmp_path, corpus):
    index = CopyIndex.build(corpus)
    arrays, settings = index.arrays(), index.settings()
    assert all(array.dtype == np.int64 and array.size > 0 for array in arrays.values())

    copy = CopyIndex.from_arrays(arrays, json.loads(json.dumps(settings)))
    assert _answers(copy) == _answers(index)

    # The layout a checkpoint uses: the arrays as a StandardSave item, the settings in the JSON meta.
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=False)
    with ocp.CheckpointManager(tmp_path / "ckpt", options=options) as manager:
        items = {"copyindex": ocp.args.StandardSave(arrays), "meta": ocp.args.JsonSave({"copyindex": settings})}
        manager.save(1, args=ocp.args.Composite(**items))
    with ocp.CheckpointManager(tmp_path / "ckpt", options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
        restored = manager.restore(
            1, args=ocp.args.Composite(copyindex=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())
        )
    loaded = CopyIndex.from_arrays(restored["copyindex"], restored["meta"]["copyindex"])
    assert (loaded.words, loaded.chars) == (index.words, index.chars)
    np.testing.assert_array_equal(loaded.word_hashes, index.word_hashes)
    np.testing.assert_array_equal(loaded.char_hashes, index.char_hashes)
    assert _answers(loaded) == _answers(index)
    if corpus:
        assert _answers(loaded)[0] is not None and _answers(loaded)[2] is not None and _answers(loaded)[3] is None


def test_damaged_or_foreign_arrays_are_refused():
    index = CopyIndex.build([TROTH, LONG_WORDS])
    arrays, settings = index.arrays(), index.settings()
    with pytest.raises(ValueError, match="hash scheme"):
        CopyIndex.from_arrays(arrays, {**settings, "scheme": "something-else"})
    with pytest.raises(ValueError, match="not sorted"):
        CopyIndex.from_arrays({**arrays, "char_hashes": arrays["char_hashes"][::-1]}, settings)
    with pytest.raises(ValueError, match="int64/uint64"):  # what a jax restore without x64 would give
        CopyIndex.from_arrays({**arrays, "char_hashes": arrays["char_hashes"].astype(np.int32)}, settings)
    with pytest.raises(ValueError, match="entries, settings say"):
        CopyIndex.from_arrays(arrays, {**settings, "word_count": settings["word_count"] + 1})


@pytest.fixture(scope="module")
def shakespeare():
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} is not here")
    paragraphs = [p for p in re.split(r"\n\s*\n", SHAKESPEARE.read_text(encoding="utf-8")) if p.strip()]
    return paragraphs, CopyIndex.build(paragraphs)  # ~1 M characters: about a second


def test_shakespeare_line_is_caught_and_shuffled_words_are_not(shakespeare):
    paragraphs, index = shakespeare
    assert index.copied_span("and then he said TO BE or not to be... that is the question") == "to be or not to be that"

    rng = random.Random(0)
    for paragraph in rng.sample([p for p in paragraphs if 150 < len(p) < 300], 20):
        assert index.copies(paragraph)
        words = paragraph.split()
        rng.shuffle(words)
        assert index.copied_span(" ".join(words)) is None

    # One check must be cheap: it runs for every candidate reply.
    candidates = [" ".join(rng.sample(p.split(), len(p.split()))) for p in paragraphs[:200]]
    start = time.perf_counter()
    for text in candidates:
        index.copies(text[:300])
    assert (time.perf_counter() - start) / len(candidates) < 0.005
