import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm import checkpoint
from lstm.model import CharRNN, ModelConfig
from lstm.sample import generate
from lstm.schema import RunRecord
from tests.conftest import TINY_MODEL, fit, repeated_corpus, tiny_config
from trainer.config import (
    BUDGET_REGULARISATION,
    CPU_CHARS_PER_S,
    CPU_WIDER,
    CPU_WIDER_FROM,
    GPU,
    GPU_CHARS_PER_S,
    GPU_WIDER,
    SMALL_EXPORT,
    SMALL_EXPORT_CHARS,
    resolve,
)
from trainer.corpus import Corpus, Record
from trainer.data import TrainingError
from trainer.train import PATIENCE, make_optimizer, train_step


def test_one_train_step_changes_every_parameter():
    model = CharRNN(ModelConfig(vocab_size=12, hidden=8, layers=2, residual=True), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    before = jax.tree.map(np.array, params)
    tx = make_optimizer(tiny_config())
    data = jax.random.randint(jax.random.key(1), (500,), 0, 12)
    params, *_ = train_step(graphdef, tx, params, tx.init(params), model.init_carry(4), data, jnp.zeros(1, jnp.int32), jax.random.key(0),
                            0, 1e-2, batch=4, seq=8, stateful=False)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, np.asarray(b)), before, params)
    assert all(jax.tree.leaves(changed)), changed


@pytest.mark.slow
@pytest.mark.parametrize("text, copies", [("lmao", 1000), ("lmao" * 4, 200), ("abcdefghijklmnopqrstuvwxyz", 200)])
def test_overfits_a_tiny_text_and_greedy_sampling_reproduces_it(tmp_path, text, copies):
    # "lmao" * 4 needs counting: the model must know where the post began to stop after the 4th.
    config = tiny_config(max_steps=300, seq_len=64)
    result = fit(repeated_corpus(text, copies), TINY_MODEL, config, tmp_path)
    assert result.summary()["val_loss"] < 0.05
    ckpt = checkpoint.load_latest(tmp_path)
    (sample, _), = generate(ckpt.model, ckpt.vocab, [""], temperature=0, max_chars=100)
    assert sample == text


@pytest.mark.slow
def test_metrics_are_appended_as_json_lines(tmp_path):
    result = fit(repeated_corpus("hello there"), TINY_MODEL, tiny_config(max_steps=40, eval_every=20),
                 tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40]
    for key in ("train_loss", "val_loss", "bpc", "val_acc", "grad_norm", "lr", "chars_per_s"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert rows == result.metrics  # the same rows, in memory
    summary = result.summary()
    assert result.steps == 40 and summary["val_loss"] == pytest.approx(min(r["val_loss"] for r in rows), abs=1e-4)


@pytest.mark.slow
def test_the_saved_model_is_the_best_one_evaluated(tmp_path):
    result = fit(repeated_corpus("hello there"), TINY_MODEL, tiny_config(max_steps=60, eval_every=20),
                 tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    best = min(rows, key=lambda r: r["val_loss"])
    saved = checkpoint.load_latest(tmp_path)
    record = RunRecord.of(saved)
    assert (saved.version, record.steps) == (result.version, best["step"])
    assert record.val_loss == pytest.approx(best["val_loss"], abs=1e-4)
    assert record == result.record  # the record returned in memory is the one saved
    in_memory = jax.tree.leaves(nnx.state(result.model))
    assert all(np.array_equal(a, b) for a, b in zip(in_memory, jax.tree.leaves(nnx.state(saved.model)), strict=True))


@pytest.mark.slow
def test_resumes_from_the_latest_checkpoint(tmp_path):
    corpus = repeated_corpus("resume me please")
    first = fit(corpus, TINY_MODEL, tiny_config(max_steps=30, eval_every=30), tmp_path)
    second = fit(corpus, TINY_MODEL, tiny_config(max_steps=30, eval_every=30), tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert second.steps == 60
    assert RunRecord.of(checkpoint.load_latest(tmp_path)).steps == 60
    fresh = fit(corpus, TINY_MODEL, tiny_config(max_steps=30, eval_every=30), tmp_path, resume=False)
    assert fresh.steps == 30


@pytest.mark.slow
def test_stateful_training_runs(tmp_path):
    result = fit(repeated_corpus("carry the state " * 3), TINY_MODEL, tiny_config(max_steps=60, stateful=True),
                 tmp_path)
    assert result.summary()["val_loss"] < 1.0


def test_posts_and_replies_are_learned_apart(trained_dir):
    ckpt = checkpoint.load_latest(trained_dir)
    (post, _), = generate(ckpt.model, ckpt.vocab, [""], mode="post", temperature=0)
    (reply, _), = generate(ckpt.model, ckpt.vocab, [""], mode="reply", temperature=0)
    assert (post, reply) == ("good morning friends", "lol same")


def test_nan_aborts_without_writing_a_checkpoint(tmp_path):
    with pytest.raises(TrainingError, match="NaN|diverged"):
        fit(repeated_corpus("boom " * 5), TINY_MODEL, tiny_config(learning_rate=1e9, max_steps=100, eval_every=10),
              tmp_path)
    assert checkpoint.versions(tmp_path) == []


def test_too_small_a_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="too small"):
        fit(Corpus("test", [Record("post", "hi"), Record("post", "yo")]), TINY_MODEL, tiny_config(), tmp_path)


@pytest.mark.slow
def test_baselines_are_measured_on_the_same_validation_text_and_logged(tmp_path):
    records = [Record("post", f"the cat sat on the mat number {i % 13}") for i in range(200)]
    summary = fit(Corpus("test", records), TINY_MODEL, tiny_config(max_steps=100, eval_every=50), tmp_path).summary()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(row["ngram_val_loss"] == summary["ngram_val_loss"] for row in rows)
    assert summary["unigram_val_loss"] > summary["ngram_val_loss"] > 0
    assert RunRecord.of(checkpoint.load_latest(tmp_path)).baselines.ngram_val_loss == summary["ngram_val_loss"]


@pytest.mark.slow
def test_a_small_export_is_evaluated_every_epoch_and_cools_down_once_it_stops_improving(tmp_path, caplog):
    # Random letters: nothing to learn past their frequencies, so the model soon only overfits.
    rng = np.random.default_rng(0)
    records = [Record("post", "".join(rng.choice(list("abcdefgh"), 30))) for _ in range(40)]
    config = tiny_config(eval_every=None, max_steps=2000)
    with caplog.at_level("INFO", logger="dann.train"):
        result = fit(Corpus("test", records), TINY_MODEL, config, tmp_path)
    summary = result.summary()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows[:3]] == [10, 20, 30]  # an epoch here is under 10 steps
    assert result.steps < 2000  # stopped early ...
    assert min(row["val_loss"] for row in rows) == summary["val_loss"]  # ... keeping the best model
    assert "cooling the learning rate down" in caplog.text
    # It stopped only once the last PATIENCE evaluations were no better on average than those before,
    # then the rate fell to its floor before the end.
    losses = [row["val_loss"] for row in rows]
    cooling = next(i for i in range(len(rows)) if i >= 2 * PATIENCE - 1 and rows[i + 1]["lr"] < rows[i]["lr"] * 0.9)
    assert np.mean(losses[cooling - PATIENCE + 1:cooling + 1]) >= np.mean(losses[cooling - 2 * PATIENCE + 1:
                                                                              cooling - PATIENCE + 1])
    assert rows[-1]["lr"] == pytest.approx(config.learning_rate * config.min_lr_ratio, rel=0.05)


def test_a_run_still_improving_on_average_is_not_stopped():
    from trainer.train import stopped_learning

    noisy_but_falling = [3.0 - 0.01 * i + (0.05 if i % 2 else 0) for i in range(30)]
    assert not stopped_learning(noisy_but_falling, stale=PATIENCE)
    assert stopped_learning([2.0] * 6 + [2.1] * 12, stale=12)
    assert not stopped_learning([2.0] * 6 + [2.1] * 12, stale=PATIENCE - 1)


def default_options(corpus, given=None, platform="cpu", minutes=0.01) -> dict:
    """What the layers above the plain defaults set, for the model and training sections. The
    budget is short enough (DANN_TRAIN_MINUTES 0.01) for the budget layer to stay out."""
    set_fields = resolve(chars=corpus.chars, platform=platform, minutes=minutes, flags=given).given()
    return {"model": set_fields["model"], "train": {k: v for k, v in set_fields["train"].items() if k != "minutes"}}


def test_the_budget_sets_dropout_by_the_epochs_the_run_will_see():
    big = Corpus("test", [Record("post", "x" * 1000)] * (4 * SMALL_EXPORT_CHARS // 1000))
    epoch_minutes = big.chars * 0.9 / CPU_CHARS_PER_S / 60
    (many, most), (more, middle), (some, least) = BUDGET_REGULARISATION
    assert default_options(big, minutes=epoch_minutes * (some - 1)) == {"model": {}, "train": {}}
    assert default_options(big, minutes=epoch_minutes * (some + 1)) == {"model": least, "train": {}}
    assert default_options(big, minutes=epoch_minutes * (more + 1)) == {"model": middle, "train": {}}
    assert default_options(big, minutes=epoch_minutes * (many + 1)) == {"model": most, "train": {}}
    config = resolve(chars=big.chars, platform="cpu", minutes=epoch_minutes * (many + 1))
    assert config.source("model", "dropout") == "budget"
    # From CPU_WIDER_FROM epochs a run trains the wider model: on a GPU, wider than the GPU's defaults.
    assert default_options(big, minutes=epoch_minutes * (CPU_WIDER_FROM + 1)) == {"model": {**CPU_WIDER, **most},
                                                                                   "train": {}}
    wide = resolve(chars=big.chars, platform="cpu", minutes=epoch_minutes * (CPU_WIDER_FROM + 1))
    assert (wide.model.hidden, wide.source("model", "hidden")) == (CPU_WIDER["hidden"], "budget")
    gpu_minutes = epoch_minutes * CPU_CHARS_PER_S / GPU_CHARS_PER_S * (CPU_WIDER_FROM + 1)
    assert default_options(big, platform="gpu", minutes=gpu_minutes)["model"] == {**GPU["model"], **GPU_WIDER, **most}
    assert default_options(big, platform="gpu", minutes=gpu_minutes / 2)["model"] == {**GPU["model"], **middle}
    # The run's own budget decides, even when a flag sets it over the setting ...
    assert default_options(big, {"train": {"minutes": epoch_minutes}}, minutes=epoch_minutes * (many + 1)) == \
        {"model": {}, "train": {}}
    steps = round(epoch_minutes * 60 * CPU_CHARS_PER_S * (many + 1) / (32 * 64))
    assert default_options(big, {"train": {"max_steps": steps, "minutes": None}}, minutes=None)["model"] == most
    # ... and whatever a flag or a file sets wins over it.
    assert default_options(big, {"model": {"dropout": 0.0}}, minutes=epoch_minutes * (many + 1))["model"] == \
        {**most, "dropout": 0.0}
    # A small export is regularised by its size already.
    small = Corpus("test", [Record("post", "a few words")] * 10)
    assert default_options(small, minutes=60) == SMALL_EXPORT


def test_the_defaults_follow_the_export_size_and_the_device_under_what_was_given():
    small = Corpus("test", [Record("post", "a few words")] * 10)
    big = Corpus("test", [Record("post", "x" * 1000)] * (SMALL_EXPORT_CHARS // 1000))
    assert default_options(big, platform="cpu") == {"model": {}, "train": {}}
    assert default_options(small, platform="cpu") == SMALL_EXPORT
    given = {"model": {"hidden": 64, "dropout": 0.1}, "train": {"batch_size": 16}}
    assert default_options(small, given, platform="cpu") == {
        "model": {**SMALL_EXPORT["model"], "hidden": 64, "dropout": 0.1},
        "train": {**SMALL_EXPORT["train"], "batch_size": 16},
    }
    assert default_options(big, given, platform="cpu") == given
    # On a GPU a large export gets the GPU defaults; a small one stays small.
    assert default_options(big, platform="gpu") == GPU
    assert default_options(small, platform="gpu") == SMALL_EXPORT
    assert default_options(big, given, platform="gpu")["model"] == {"hidden": 64, "layers": 2, "dropout": 0.1}


@pytest.mark.slow
def test_a_subword_model_trains_reports_nats_per_character_and_speaks(tmp_path):
    from dann.voice.bestof import Voice, answer
    from dann.voice.request import GenerationRequest
    from lstm.bpe import BpeVocab
    from trainer.data import prepare
    from trainer.train import evaluate, model_loss

    records = [Record("post", "good morning friends") for _ in range(80)] + [Record("reply", "lol same")] * 80
    config = tiny_config(max_steps=150, eval_every=150, tokens="bpe", bpe_vocab=300)
    fit(Corpus("test", records), TINY_MODEL, config, tmp_path)
    ckpt = checkpoint.load_latest(tmp_path)
    record = RunRecord.of(ckpt)
    assert isinstance(ckpt.vocab, BpeVocab) and ckpt.lexicon is None and 260 < len(ckpt.vocab) <= 300
    assert 0.05 < record.tokens_per_char < 0.5  # a few tokens a post instead of one a character
    data = prepare(Corpus("test", records), config, vocab=ckpt.vocab)
    graphdef, params = nnx.split(ckpt.model)
    per_token = evaluate(graphdef, params, jnp.asarray(data.val))[0]
    assert record.lstm_val_loss == pytest.approx(per_token * record.tokens_per_char, rel=1e-3)
    assert model_loss(ckpt.model, ckpt.vocab, data) == pytest.approx(record.lstm_val_loss, rel=1e-3)
    assert model_loss(ckpt.model, ckpt.vocab, data, ckpt.ngram) == pytest.approx(record.val_loss, rel=1e-3)
    assert record.baselines.unigram_val_loss < 3.0  # per character too, not per 300-way token
    (texts,), tally = answer(Voice.of(ckpt), [GenerationRequest("post", temperature=0.05, seed=1, n=2)], best_of=2,
                             max_chars=40)
    assert texts == ["good morning friends"] * 2 and tally.gibberish == 0
