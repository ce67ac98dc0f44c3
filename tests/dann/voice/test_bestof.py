"""Best-of-n: the rejection rules, the choice among candidates, and the whole path through a trained
model whose every sample copies its corpus."""

import pytest

from dann.state import store_beside
from dann.voice.bestof import SAFE_LINE, Tally, balanced, choose, generate_best, loops, resample_temperature
from dann.voice.blocklist import Blocklist
from dann.voice.filters import Filters
from dann.voice.forget import ForgetList
from lstm import checkpoint
from lstm.copyindex import CopyIndex
from tests.conftest import TINY_MODEL, fit, repeated_corpus, tiny_config

CORPUS_LINE = "the quick brown fox jumps over the lazy dog while the cat sleeps"
INDEX = CopyIndex.build([CORPUS_LINE], words=7, chars=40)


def test_loops_catches_repetition_but_not_ordinary_text():
    assert loops("i am the one i am the one i am the one i am the one")
    assert not loops("i am the one who knocks, and you are the one who listens to me")
    assert not loops("ok ok ok")  # too short to judge


def test_balanced_brackets_and_quotes():
    assert balanced('he said "hi" (and [left])')
    assert not balanced("an (open bracket")
    assert not balanced("wrong (order]")
    assert not balanced('one "quote')
    assert balanced("it's fine: apostrophes are not quotes")


def test_a_copy_is_rejected_and_never_chosen_while_another_candidate_exists():
    copy = "so " + CORPUS_LINE[:50]
    fresh = "a sentence nobody has written before today, with its own words"
    best, tally = choose([(copy, -0.5), (fresh, -1.2)], index=INDEX, val_loss=1.2, max_chars=280)
    assert best == 1
    assert (tally.candidates, tally.copies, tally.fallbacks) == (2, 1, 0)


def test_the_prompt_counts_a_continuation_that_completes_a_copy_is_one():
    words = CORPUS_LINE.split()
    prompt, continuation = " ".join(words[:5]) + " ", " ".join(words[5:8]) + " and then something new"
    assert not INDEX.copies(continuation) and INDEX.copies(prompt + continuation)
    fresh = "and a thought of its own entirely, nothing like the corpus"
    best, tally = choose([(continuation, -1.0), (fresh, -1.0)], index=INDEX, val_loss=1.0, max_chars=280,
                         prompt=prompt)
    assert (best, tally.copies) == (1, 1)


def test_blocked_and_forgotten_candidates_are_never_served(tmp_path):
    forget = ForgetList(store_beside(tmp_path))
    forget.add("Elm Street 5")
    filters = Filters(Blocklist(["nice"]), forget)
    candidates = [("such a n.i.c.e day out", -1.0), ("i live at elm street, 5!", -1.0), ("qz xv jk wq pf", -5.0)]
    best, tally = choose(candidates, index=None, val_loss=1.0, max_chars=280, filters=filters)
    assert (best, tally.blocked, tally.forgotten, tally.gibberish, tally.fallbacks) == (2, 1, 1, 1, 1)
    best, _ = choose(candidates[:2], index=None, val_loss=1.0, max_chars=280, filters=filters)
    assert best is None


def test_the_second_draw_is_hotter_but_not_wild():
    assert resample_temperature(0.05) == 0.55
    assert resample_temperature(0.4) == 0.9
    assert resample_temperature(1.2) == 2.0
    assert resample_temperature(3.0) == 3.0


def test_the_score_prefers_balanced_ended_text_near_real_log_probability():
    ended = "this one is fine and ends well"
    unbalanced = "this one (never closes its bracket"
    capped = "this is a longer one that was cut off at the cap"
    candidates = [(unbalanced, -1.0), (capped, -1.0), (ended, -1.0)]
    best, _ = choose(candidates, index=None, val_loss=1.0, max_chars=len(capped))
    assert candidates[best][0] == ended
    # Same shape, different log-probabilities: the one nearest -val_loss wins.
    near, far = ("a perfectly ordinary post here", -1.1), ("a perfectly ordinary post there", -0.3)
    assert choose([far, near], index=None, val_loss=1.2, max_chars=280)[0] == 1


def test_gibberish_and_loops_are_rejected_and_counted():
    gibberish = ("qz xv jk wq pf zz kq", -4.0)
    looping = ("the end the end the end the end the end the end the end", -0.3)
    fine = ("a real post about something", -1.0)
    best, tally = choose([gibberish, looping, fine], index=None, val_loss=1.0, max_chars=280)
    assert best == 2
    assert (tally.gibberish, tally.loops, tally.fallbacks) == (1, 1, 0)


def test_when_everything_is_rejected_the_best_non_copy_is_served_and_a_copy_never():
    copy = (CORPUS_LINE, -0.5)
    gibberish = ("qz xv jk wq pf", -5.0)
    best, tally = choose([copy, gibberish], index=INDEX, val_loss=1.0, max_chars=280)
    assert (best, tally.fallbacks) == (1, 1)
    best, tally = choose([copy], index=INDEX, val_loss=1.0, max_chars=280)
    assert (best, tally.copies, tally.fallbacks) == (None, 1, 0)


def test_tally_adds_and_reports_a_rate():
    total = Tally()
    total.add(Tally(candidates=8, copies=2, loops=1))
    total.add(Tally(candidates=8, gibberish=1))
    assert total.as_dict()["rejected"] == 4
    assert total.as_dict()["rejected_rate"] == 0.25
    assert Tally().as_dict()["rejected_rate"] is None


@pytest.fixture(scope="module")
def copying_model(tmp_path_factory):
    """A model trained on one long post repeated: every sample reproduces it, so every sample copies."""
    directory = tmp_path_factory.mktemp("copying")
    fit(repeated_corpus(CORPUS_LINE), TINY_MODEL, tiny_config(max_steps=300, eval_every=300), directory)
    return checkpoint.load_latest(directory)


@pytest.mark.slow
def test_the_trained_checkpoint_carries_its_index_and_every_copy_is_counted(copying_model):
    assert copying_model.copy_index is not None
    assert copying_model.meta["copy"]["words"] == 7
    texts, tally = generate_best(
        copying_model.model, copying_model.vocab, ["", ""], n=4, index=copying_model.copy_index,
        val_loss=copying_model.info["val_loss"], mode=["post"] * 2, context=[None] * 2, temperature=[0.4] * 2,
        seed=[0, 1], max_chars=100,
    )
    # The first draw can only copy; the hotter second draw is tried; a copy is never served.
    assert (tally.texts, tally.all_copied, tally.resampled) == (2, 2, 2)
    assert tally.candidates == 16 and tally.copies >= 8
    assert not any(copying_model.copy_index.copies(text) for text in texts)
    assert tally.safe_lines == texts.count(SAFE_LINE)
    # Without the index nothing is called a copy.
    _, tally = generate_best(
        copying_model.model, copying_model.vocab, [""], n=4, index=None, val_loss=copying_model.info["val_loss"],
        mode=["post"], context=[None], temperature=[0.4], seed=[0], max_chars=100,
    )
    assert tally.copies == 0


def test_a_prompts_answer_depends_on_its_own_seed_not_on_its_batch(trained_dir):
    ckpt = checkpoint.load_latest(trained_dir)

    def best(prompts, seeds):
        texts, _ = generate_best(ckpt.model, ckpt.vocab, prompts, n=3, index=ckpt.copy_index,
                                 val_loss=ckpt.info["val_loss"], mode=["post"] * len(prompts),
                                 context=[None] * len(prompts), temperature=[1.0] * len(prompts), seed=seeds,
                                 max_chars=40)
        return texts

    alone = best(["g"], [7])
    together = best(["lol", "g", "good"], [3, 7, 9])
    assert together[1] == alone[0]
