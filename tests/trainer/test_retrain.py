"""The scheduled trainer's runs: skip, publish, the promotion gate, crash safety and the lock.

Crash tests use real `dann trainer` subprocesses killed with a real SIGKILL."""

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dann.cli import main
from dann.settings import Settings
from lstm import checkpoint
from lstm.schema import RunRecord
from tests.conftest import built_once, run_config, tiny_config
from tests.trainer.helpers import DANN, EVAL_SAMPLES, config_file, trainer_env, wait_for, write_export
from trainer.config import SMALL_EXPORT
from trainer.exports import read_corpus
from trainer.retrain import configured, converged_since, retrain, state_dir

pytestmark = pytest.mark.slow  # trains: not in the fast tier

TINY = {"hidden": 32}


# A post for the forget test, and the posts of the reciting model, in write_export's letters: the
# same vocabulary size means the same shapes, so they reuse the programs the module has compiled.
SECRET = "then the old friends came to the green hall for coffee and a long chat"
RECITED = "good morning friends the coffee first then code lol same"


def run(settings, **config):
    return retrain(settings, run_config(TINY, tiny_config(**{"max_steps": 120, **config})))


def record(directory) -> RunRecord:
    return RunRecord.of(checkpoint.load_latest(directory))


@pytest.fixture(scope="session")
def first_version(tmp_path_factory, worker_id):
    """A serving directory after one published run, trained once per run (tests/conftest.py's
    built_once: both xdist workers run tests of this module)."""
    def build(root):
        root.mkdir()
        settings = Settings(_env_file=None, export_path=write_export(root / "posts.txt"),
                            checkpoint_dir=root / "serving", publish_eval_samples=EVAL_SAMPLES)
        assert run(settings).outcome == "published"

    return built_once(tmp_path_factory, worker_id, "first-version", build) / "serving"


@pytest.fixture
def settings(tmp_path):
    return Settings(_env_file=None, export_path=write_export(tmp_path / "posts.txt"), publish_eval_samples=EVAL_SAMPLES,
                    checkpoint_dir=tmp_path / "serving", keep_versions=3)


@pytest.fixture
def served(settings, first_version):
    """`settings` whose serving directory already holds version 1 of this export."""
    shutil.copytree(first_version, settings.checkpoint_dir)
    return settings


def test_first_run_publishes_with_its_report(settings):
    first = run(settings)
    assert (first.outcome, first.version) == ("published", 1)
    report = Path(settings.checkpoint_dir) / record(settings.checkpoint_dir).report
    assert {p.name for p in report.iterdir()} == {"metrics.jsonl", "loss.png", "samples.md", "eval.json"}
    assert (report / "loss.png").read_bytes()[:4] == b"\x89PNG"
    quality = json.loads((report / "eval.json").read_text())
    assert quality["candidates"]["candidates"] == 2 * EVAL_SAMPLES * 8  # posts and replies, best of 8 each
    assert record(settings.checkpoint_dir).eval == quality
    assert "temperature 0.25" in (report / "samples.md").read_text()


def test_an_unchanged_export_trains_the_served_model_on_until_it_converges(settings, capsys):
    # The LSTM alone: on this export the n-gram is near perfect from the first run, and this test
    # is about training on, not about the mixture. A first run too short to converge:
    lstm = {"ngram_mix": False}
    assert run(settings, max_steps=30, **lstm).outcome == "published"
    before = record(settings.checkpoint_dir)
    again = run(settings, **lstm)  # the same export, config and forget list; only the budget differs
    assert (again.outcome, again.version) == ("published", 2)
    after = record(settings.checkpoint_dir)
    assert after.steps == before.steps + 120  # continued from version 1 ...
    assert after.val_loss < before.val_loss - 0.1  # ... into a better model
    assert after.train_seconds > before.train_seconds > 0
    # Runs of one step soon lower the loss by less than PLATEAU_NATS: converged, and the next run
    # skips and says so.
    for _ in range(5):
        run(settings, max_steps=1, **lstm)
        if (since := converged_since(settings.checkpoint_dir, checkpoint.versions(settings.checkpoint_dir)[0])):
            break
    assert since
    skipped = run(settings, **lstm)
    assert skipped.outcome == "skipped" and f"converged on this export since version {since}" in skipped.reason
    main(["status", "--checkpoint-dir", str(settings.checkpoint_dir)])
    assert f"Converged on this export since version {since}" in capsys.readouterr().out
    # A changed export trains again.
    write_export(settings.export_path, "\nbrand new post here")
    assert run(settings, max_steps=40, **lstm).outcome == "published"


def test_a_changed_training_setting_retrains_on_the_same_export(served):
    settings = served
    assert run(settings, learning_rate=5e-3).outcome == "published"


def test_a_changed_export_is_retrained_warm_and_published(served):
    settings = served
    first_steps = record(settings.checkpoint_dir).steps
    write_export(settings.export_path, "\nbrand new post here")
    result = run(settings, max_steps=40, eval_every=40)
    assert (result.outcome, result.version) == ("published", 2)
    served = checkpoint.load_latest(settings.checkpoint_dir)
    assert served.version == 2 and RunRecord.of(served).steps == first_steps + 40  # warm-started from version 1


def test_a_worse_model_is_not_published(served):
    settings = served
    write_export(settings.export_path, "\nbrand new post here")
    # Another architecture cannot warm-start, and 2 steps from scratch is far worse (served alone:
    # with the n-gram mixed in, even a 2-step LSTM is about as good as the counts).
    result = retrain(settings, run_config({"hidden": 16}, tiny_config(max_steps=2, ngram_mix=False)))
    assert result.outcome == "rejected" and "worse than the served model" in result.reason
    assert checkpoint.versions(settings.checkpoint_dir) == [1]


def test_the_auto_retuner_runs_only_when_val_loss_stops_improving(served):
    settings = served.model_copy(update={"auto_retune": True, "retune_minutes": 0.1})
    write_export(settings.export_path, "\nbrand new post here")
    # Two more steps cannot lower the loss by PLATEAU_NATS: a plateau, so it retunes.
    result = run(settings, max_steps=2, eval_every=2)
    assert result.retuned
    tuned = json.loads((Path(settings.checkpoint_dir) / "tuned.json").read_text())
    assert set(tuned) == {"model", "train"}
    assert configured(settings, read_corpus(settings.export_path)).train.learning_rate == tuned["train"]["learning_rate"]


def test_without_the_setting_a_plateau_does_not_retune(served):
    write_export(served.export_path, "\nbrand new post here")
    result = run(served, max_steps=2, eval_every=2)
    assert not result.retuned and not (Path(served.checkpoint_dir) / "tuned.json").exists()


def test_a_nan_model_is_not_published(served):
    settings = served
    write_export(settings.export_path, "\nbrand new post here")
    result = run(settings, learning_rate=1e9, eval_every=10)
    assert result.outcome == "rejected" and ("NaN" in result.reason or "diverged" in result.reason)
    assert checkpoint.versions(settings.checkpoint_dir) == [1]


def test_a_reader_polling_the_serving_directory_sees_the_new_version(served):
    settings = served
    seen = []

    def poll():
        current = checkpoint.load_latest(settings.checkpoint_dir).version
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not seen:
            try:
                seen.append(checkpoint.load_latest(settings.checkpoint_dir, newer_than=current).version)
            except checkpoint.NoCheckpoint:
                time.sleep(0.05)

    reader = threading.Thread(target=poll)
    reader.start()
    write_export(settings.export_path, "\nsomething new")
    run(settings, max_steps=20)
    reader.join()
    assert seen == [2]


# --- real processes, real signals --------------------------------------------------------------


def test_kill_9_during_training_keeps_the_served_model_and_the_next_run_is_clean(served):
    settings = served
    write_export(settings.export_path, "\nchanged while training")
    trainer = subprocess.Popen([*DANN, "trainer", "--once"], env=trainer_env(settings, "2"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (state_dir(settings.checkpoint_dir)).exists(), every=0.05)
    time.sleep(3)  # well inside the training loop
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    assert trainer.returncode == -signal.SIGKILL
    assert checkpoint.load_latest(settings.checkpoint_dir).version == 1
    assert run(settings, max_steps=20).outcome in ("published", "rejected")  # no leftovers in the way


def test_kill_9_during_publishing_keeps_a_loadable_model(settings):
    run(settings, max_steps=1)  # a poor served model, so the trainer's new one is published
    serving = Path(settings.checkpoint_dir)
    write_export(settings.export_path, "\nchanged before publishing")
    trainer = subprocess.Popen([*DANN, "trainer", "--once"], env=trainer_env(settings, "0.05"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    saving = wait_for(lambda: any("tmp" in p.name for p in serving.iterdir()))  # orbax's unfinished version
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    assert saving, "the trainer finished before its publish was seen"
    served = checkpoint.load_latest(serving)
    assert served.version in (1, 2)  # the old model, or the new one if the rename had just happened
    assert json.dumps(served.info)  # and it loads whole
    result = run(settings, max_steps=20)
    assert result.outcome in ("published", "rejected")
    assert not any("tmp" in p.name for p in serving.iterdir())  # the next writer cleaned up


def test_the_trainer_reads_its_hyperparameters_from_a_file_over_the_small_export_defaults(settings):
    run = configured(
        Settings(_env_file=None, train_config=Path(trainer_env(settings)["DANN_TRAIN_CONFIG"]), train_minutes=2),
        read_corpus(settings.export_path))
    config = run.train
    # The file's values win; what it leaves out comes from the defaults for a small export.
    assert (run.given()["model"], config.batch_size, config.seq_len, config.minutes) == (
        {**SMALL_EXPORT["model"], "hidden": 64}, 16, 32, 2)
    assert config.learning_rate == SMALL_EXPORT["train"]["learning_rate"]


def test_a_second_trainer_exits_with_a_clear_message(settings):
    first = subprocess.Popen([*DANN, "trainer"], env=trainer_env(settings), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lock = Path(settings.checkpoint_dir) / ".trainer.lock"
    try:
        assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), every=0.05)
        second = subprocess.run([*DANN, "trainer", "--once"], env=trainer_env(settings), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 1
        assert f"another trainer (pid {first.pid}) is already writing" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


# --- trust: copies and forgotten phrases ---------------------------------------------------------

def test_a_model_that_recites_its_posts_is_not_published(tmp_path, caplog):
    """Seven long posts, learnt by heart: nearly every candidate copies one, so it is refused."""
    lines = [f"{i} {RECITED}" for i in range(7)] * 30
    export = tmp_path / "posts.txt"
    export.write_text("\n".join(f"{line} {n % 7}" for n, line in enumerate(lines)))
    settings = Settings(_env_file=None, export_path=export, checkpoint_dir=tmp_path / "serving",
                        publish_eval_samples=EVAL_SAMPLES)
    # The LSTM alone: the n-gram's smoothing splices the seven posts into texts that copy fewer
    # than 7 words in a row, so the mixture recites less than the gate is there to catch.
    result = retrain(settings, run_config(TINY, tiny_config(max_steps=300, eval_every=300, ngram_mix=False)))
    assert result.outcome == "rejected"
    assert "DANN_MAX_COPY_RATE is 2.0%" in result.reason and "recites" in result.reason
    assert "not publishing" in caplog.text
    assert checkpoint.versions(settings.checkpoint_dir) == []
    share = float(result.reason.split("%")[0])
    assert share > 20  # ten times the limit and more: this model can do little but recite


def test_a_forgotten_phrase_leaves_the_corpus_and_the_copy_index_at_the_next_run(settings, monkeypatch, capsys):
    write_export(settings.export_path, f"\n{SECRET}")
    assert run(settings, max_steps=20).outcome == "published"
    before = checkpoint.load_latest(settings.checkpoint_dir)
    assert before.copy_index.copies(SECRET)

    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(settings.checkpoint_dir))
    assert main(["forget", "Green HALL"]) == 0 and "Forgotten" in capsys.readouterr().out
    # Nothing else changed: the forget list alone makes the trainer retrain. (A lenient gate: this
    # short run need not beat the served model, only be published.)
    same_as_run = config_file(run_config(TINY, tiny_config(max_steps=20)),
                              Path(settings.checkpoint_dir).parent / "same_as_run.json")  # what run() trains
    for name, value in {**trainer_env(settings, "0.05"), "DANN_PROMOTE_TOLERANCE": "100",
                        "DANN_TRAIN_CONFIG": str(same_as_run)}.items():
        if name.startswith("DANN_"):
            monkeypatch.setenv(name, value)
    assert main(["trainer", "--once"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["outcome"] == "published"
    after = checkpoint.load_latest(settings.checkpoint_dir)
    assert after.version == before.version + 1
    assert not after.copy_index.copies(SECRET)
    assert RunRecord.of(after).records == RunRecord.of(before).records - 1 and RunRecord.of(after).forget_digest
    assert main(["corpus", str(settings.export_path)]) == 0
    printed = capsys.readouterr().out
    assert "green hall" not in printed and "good morning" in printed


def test_a_folder_export_learns_the_exports_dropped_into_it(tmp_path):
    from dann.voice.forget import forget_list
    from tests.trainer.fixtures import FIXTURES
    from trainer.retrain import read_export

    folder = tmp_path / "exports"
    folder.mkdir()
    write_export(folder / "posts.txt")
    settings = Settings(_env_file=None, export_path=folder, checkpoint_dir=tmp_path / "serving",
                        publish_eval_samples=0)
    assert run(settings).outcome == "published"
    assert record(settings.checkpoint_dir).sources == {"export:posts.txt": 120}
    shutil.copytree(FIXTURES / "x_archive", folder / "twitter-2024")
    (folder / "more.txt").write_text("a new line of mine\nand one more of mine\n")
    second = run(settings)
    assert second.outcome == "published", second.reason
    assert record(settings.checkpoint_dir).sources == {"export:posts.txt": 120, "export:twitter-2024": 10,
                                                       "export:more.txt": 2}
    # The same archive again, under another name: nothing the trainer reads changes.
    shutil.copytree(FIXTURES / "x_archive", folder / "twitter-2024 (1)")
    again = read_export(folder, forget_list(settings))
    assert again.data_hash() == record(settings.checkpoint_dir).data_hash and again.dropped["superseded"] == 10
