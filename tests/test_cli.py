"""The `dann` command: the bad inputs the foundation issue names, and a train -> sample round trip
through real subprocesses (so loading happens in a fresh process)."""

import json
import logging
import os
import platform
import re
import subprocess
import sys
import time

import pytest

from tests.helpers import assert_one_line_error, run_main

DANN = [sys.executable, "-m", "dann.cli"]
# These exports are tiny and learnable by heart: the regularisation a small real export gets
# (trainer.train.SMALL_EXPORT) would only slow their 60-200 steps down.
NO_SMALL_EXPORT_DEFAULTS = ["--dropout", "0", "--weight-drop", "0"]


def test_missing_file(capsys, tmp_path):
    code, _, err = run_main(capsys, "train", str(tmp_path / "nope.txt"), "--checkpoint-dir", str(tmp_path / "c"))
    assert_one_line_error(code, err, "nope.txt", "no such file")


def test_empty_file(capsys, tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    code, _, err = run_main(capsys, "train", str(tmp_path / "empty.txt"), "--checkpoint-dir", str(tmp_path / "c"))
    assert_one_line_error(code, err, "empty.txt", "no posts")


def test_binary_file(capsys, tmp_path):
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 10)
    code, _, err = run_main(capsys, "train", str(tmp_path / "blob.txt"), "--checkpoint-dir", str(tmp_path / "c"))
    assert_one_line_error(code, err, "blob.txt", "binary")


def test_not_utf8(capsys, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café olé\n".encode("latin-1") * 50)
    code, _, err = run_main(capsys, "train", str(tmp_path / "latin1.txt"), "--checkpoint-dir", str(tmp_path / "c"))
    assert_one_line_error(code, err, "latin1.txt", "UTF-8")


def test_no_checkpoint(capsys, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    code, _, err = run_main(capsys, "sample", "--checkpoint-dir", str(tmp_path / "empty_dir"))
    assert_one_line_error(code, err, "no checkpoint", "empty_dir")


@pytest.mark.parametrize("temp", ["-0.5", "5.5", "warm"])
def test_bad_temperature(capsys, tmp_path, temp):
    code, _, err = run_main(capsys, "sample", "--temp", temp, "--checkpoint-dir", str(tmp_path))
    assert_one_line_error(code, err, "--temp")


def test_bad_setting_from_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DANN_TEMPERATURE", "-1")
    code, _, err = run_main(capsys, "sample", "--checkpoint-dir", str(tmp_path))
    assert_one_line_error(code, err, "DANN_TEMPERATURE")


@pytest.mark.slow
def test_train_then_sample_in_fresh_processes(tmp_path):
    corpus = tmp_path / "posts.txt"
    corpus.write_text("\n".join(["good morning friends", "coffee first then code", "lol same"] * 60))
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    trained = subprocess.run(
        [*DANN, "train", str(corpus), "--steps", "60", "--hidden", "32", "--layers", "1", "--batch-size", "8",
         "--seq-len", "16", "--eval-every", "30", "--min-char-count", "1", "--checkpoint-dir", str(ckpt),
         *NO_SMALL_EXPORT_DEFAULTS],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert set(summary) == {"val_loss", "bpc", "lstm_val_loss", "ngram_val_loss", "ngram_weight", "val_acc",
                            "unigram_val_loss", "steps", "chars_per_s"}
    # Served: the mixture, no worse than either of its parts on the validation posts.
    assert summary["val_loss"] <= min(summary["lstm_val_loss"], summary["ngram_val_loss"]) + 0.02
    assert summary["steps"] == 60

    def sample():
        done = subprocess.run([*DANN, "sample", "-n", "3", "--seed", "4", "--temp", "0.8", "--json",
                               "--checkpoint-dir", str(ckpt)], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    first = sample()
    from lstm.checkpoint import versions

    assert len(first) == 3 and all(s["version"] == versions(ckpt)[0] for s in first)  # the newest
    assert sample() == first  # same seed, same text, in another fresh process



# --- writers beside the trainer: one lock per checkpoint directory ------------------------------

TINY_TRAIN = ["--steps", "60", "--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "16",
              "--eval-every", "30", "--min-char-count", "1", *NO_SMALL_EXPORT_DEFAULTS]  # as the round trip above


def writer_env(checkpoints, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANN_") or k == "DANN_JAX_CACHE_DIR"}
    return {**env, "JAX_PLATFORMS": "cpu", "DANN_CHECKPOINT_DIR": str(checkpoints),
            **{f"DANN_{k.upper()}": str(v) for k, v in settings.items()}}


def wait_until(condition, process, what, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_for_lock(lock, pid, process):
    wait_until(lambda: lock.exists() and lock.read_text().strip() == str(pid), process, "the trainer never took its lock")


@pytest.mark.slow
def test_train_tune_and_demo_refuse_a_directory_the_trainer_is_writing(tmp_path):
    export = tmp_path / "posts.txt"
    export.write_text("\n".join(["good morning friends", "coffee first then code", "lol same"] * 60))
    checkpoints = tmp_path / "ckpt"
    env = writer_env(checkpoints, export_path=export, train_cron="0 3 1 1 *")  # no run while the test lasts
    trainer = subprocess.Popen([*DANN, "trainer"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lock(checkpoints / ".trainer.lock", trainer.pid, trainer)
        # The trainer's first heartbeat lands just after its lock; wait for it so that the listing
        # below holds only what the refused commands might have written.
        wait_until(lambda: (checkpoints / ".trainer-heartbeat").exists(), trainer, "the trainer never beat")
        before = sorted(p.name for p in checkpoints.iterdir())
        for argv in (["train", str(export), *TINY_TRAIN, "--checkpoint-dir", str(checkpoints)],
                     ["tune", str(export), "--minutes", "0.1", "--checkpoint-dir", str(checkpoints)],
                     ["demo", "--no-web", "--minutes", "0.01", "--checkpoint-dir", str(checkpoints)]):
            done = subprocess.run([*DANN, *argv], check=False, env=env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300)
            instead = "an --out file elsewhere" if argv[0] == "tune" else "another --checkpoint-dir"
            assert_one_line_error(done.returncode, done.stderr, f"the trainer (pid {trainer.pid}) is writing "
                                  f"{checkpoints} (it holds .trainer.lock); stop it or give `dann {argv[0]}` {instead}")
            assert sorted(p.name for p in checkpoints.iterdir()) == before, argv[0]  # no version, no tuned.json
        assert trainer.poll() is None  # and the trainer goes on
    finally:
        trainer.terminate()
        trainer.communicate(timeout=60)


@pytest.mark.slow
def test_train_takes_the_lock_and_gives_it_back(capsys, tmp_path):
    from lstm.checkpoint import versions
    from trainer.lock import Locked, TrainerLock

    export = tmp_path / "posts.txt"
    export.write_text("\n".join(["good morning friends", "coffee first then code", "lol same"] * 60))
    checkpoints = tmp_path / "ckpt"
    code, _, err = run_main(capsys, "train", str(export), *TINY_TRAIN, "--quiet", "--checkpoint-dir", str(checkpoints))
    assert code == 0, err
    assert len(versions(checkpoints)) >= 1
    assert (checkpoints / ".trainer.lock").read_text() == f"{os.getpid()} dann train"  # it held the lock
    with TrainerLock(checkpoints):  # and gave it back when it finished, in this same process
        pass
    # A trainer started while a writer holds the lock names that writer.
    named = re.escape(f"`dann train` (pid {os.getpid()}) is already writing {checkpoints}; exiting")
    with TrainerLock(checkpoints, "dann train"), pytest.raises(Locked, match=named):
        TrainerLock(checkpoints).__enter__()


def test_corpus_prints_records_and_stats(capsys):
    from tests.trainer.fixtures import FIXTURES

    code, out, _ = run_main(capsys, "corpus", str(FIXTURES / "x_archive"))
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 10
    assert set(records[0]) == {"kind", "text", "created_at", "source_id", "private", "platform", "source"}
    assert (records[0]["platform"], records[0]["source"]) == ("x", "export:x_archive")
    assert [r["created_at"] for r in records] == sorted(r["created_at"] for r in records)
    code, out, _ = run_main(capsys, "corpus", str(FIXTURES / "x_archive"), "--stats")
    stats = json.loads(out)
    assert code == 0 and (stats["posts"], stats["replies"], stats["dropped"]["retweets"]) == (6, 4, 2)


def test_corpus_stats_count_dms_and_forgotten_posts_and_the_flag_brings_dms_back(capsys, tmp_path, monkeypatch):
    from tests.trainer.fixtures import FIXTURES

    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(tmp_path))
    package = str(FIXTURES / "discord_package")
    code, out, _ = run_main(capsys, "corpus", package, "--stats")
    assert code == 0 and (json.loads(out)["posts"], json.loads(out)["dropped"]["private"]) == (5, 5)
    assert json.loads(run_main(capsys, "corpus", package, "--stats", "--include-dms")[1])["posts"] == 9
    monkeypatch.setenv("DANN_INCLUDE_DMS", "true")
    assert json.loads(run_main(capsys, "corpus", package, "--stats")[1])["posts"] == 9

    assert run_main(capsys, "forget", "GM")[0] == 0
    code, out, _ = run_main(capsys, "corpus", package, "--stats")
    assert code == 0 and (json.loads(out)["posts"], json.loads(out)["dropped"]["forgotten"]) == (8, 1)
    assert run_main(capsys, "forget", "--list")[1] == "GM\n"
    code, out, _ = run_main(capsys, "forget", "gm")
    assert code == 0 and "forgotten already" in out
    assert run_main(capsys, "forget", "--remove", "gm")[0] == 0
    assert run_main(capsys, "forget", "--list")[1] == ""


@pytest.mark.slow
def test_train_on_an_export_learns_posts_and_replies_apart(capsys, tmp_path):
    """Kinds flow from an X archive through training to `sample --mode`."""
    from tests.trainer.fixtures import zip_members

    endings = [f"{a} {b}" for a in ("big", "small", "red", "odd", "new", "old") for b in ("cats", "dogs", "days", "plans", "songs")]
    tweets = []
    for i in range(2 * len(endings)):
        reply = i % 2 == 1
        text = f"@sam lol same {endings[i // 2]}" if reply else f"good morning {endings[i // 2]}"
        tweet = {"id_str": str(1000 + i), "created_at": f"Tue Mar 05 09:{i // 60:02d}:{i % 60:02d} +0000 2024",
                 "full_text": text, "entities": {}}
        if reply:
            tweet.update(in_reply_to_status_id_str="999", display_text_range=["5", "13"])
        tweets.append({"tweet": tweet})
    export = zip_members(tmp_path / "twitter.zip", {"data/tweets.js": "window.YTD.tweets.part0 = " + json.dumps(tweets)})
    ckpt = tmp_path / "ckpt"
    code, _, err = run_main(capsys, "train", str(export), "--steps", "200", "--hidden", "64", "--batch-size", "16",
                            "--lr", "0.01", "--min-char-count", "1", "--quiet", "--checkpoint-dir", str(ckpt),
                            *NO_SMALL_EXPORT_DEFAULTS)
    assert code == 0, err
    for mode, start in (("post", "good morning "), ("reply", "lol same ")):
        code, out, _ = run_main(capsys, "sample", "--mode", mode, "-n", "4", "--temp", "0.4", "--json",
                                "--checkpoint-dir", str(ckpt))
        assert all(json.loads(line)["text"].startswith(start) for line in out.splitlines()), out

    code, out, err = run_main(capsys, "eval", str(export), "--samples", "10", "--json", "--checkpoint-dir", str(ckpt))
    assert code == 0, err
    result = json.loads(out)
    assert {"val_loss", "ngram_val_loss", "unigram_val_loss", "copy_rate", "distinct2_generated", "distinct2_real",
            "mean_len_generated", "mean_len_real", "auc_dann", "auc_markov", "auc_markov_nocopy", "auc_ngram",
            "made_up_words"} <= set(result)
    assert 0 < result["val_loss"] < result["unigram_val_loss"]
    assert 0 <= result["copy_rate"] <= result["copy_rate_raw"] <= 1
    assert 0 < result["distinct2_generated"] <= 1 and 0 < result["distinct2_real"] <= 1
    assert result["candidates"]["candidates"] == 2 * 10 * 8  # 10 posts and 10 replies, best of 8
    code, out, err = run_main(capsys, "eval", str(export), "--samples", "4", "--checkpoint-dir", str(ckpt))
    assert code == 0 and "gram baseline" in out and "copy rate" in out, out


@pytest.mark.slow
def test_bench_prints_one_json_line(capsys):
    code, out, _ = run_main(capsys, "bench", "sample", "--hidden", "16", "--layers", "1", "--chars", "20",
                            "--candidates", "2", "--repeats", "1", "--no-reference")
    result = json.loads(out)
    assert code == 0 and result["bench"] == "sample" and result["ms_per_generation"] > 0
    code, out, _ = run_main(capsys, "bench", "train", "--batch", "4", "--seq", "8", "--hidden", "16", "--layers", "1",
                            "--steps", "2", "--repeats", "1", "--no-reference")
    result = json.loads(out)
    assert code == 0 and result["chars_per_s"] > 0 and 0 < result["utilisation"] < 1


def test_status_reports_the_served_model_and_the_next_run(capsys, trained_dir, tmp_path):
    code, out, _ = run_main(capsys, "status", "--json", "--checkpoint-dir", str(trained_dir))
    status = json.loads(out)
    assert code == 0
    assert {"version", "trained_at", "export_hash", "posts", "val_loss", "next_run"} <= set(status)
    assert status["version"] >= 1 and status["posts"] == 80 and status["val_loss"] < 1.0 and status["next_run"]
    code, out, _ = run_main(capsys, "status", "--checkpoint-dir", str(tmp_path / "none"))
    assert code == 0 and "No model" in out


def test_eval_and_tune_refuse_bad_input_in_one_line(capsys, trained_dir, tmp_path):
    code, _, err = run_main(capsys, "eval", "--checkpoint-dir", str(trained_dir))
    assert_one_line_error(code, err, "export")
    code, _, err = run_main(capsys, "eval", str(tmp_path / "nope.zip"), "--checkpoint-dir", str(trained_dir))
    assert_one_line_error(code, err, "nope.zip")
    code, _, err = run_main(capsys, "tune", str(tmp_path / "nope.zip"), "--minutes", "0.1")
    assert_one_line_error(code, err, "nope.zip")


@pytest.mark.slow
def test_tune_writes_the_config_and_says_what_it_found(capsys, tmp_path):
    from lstm.schema import tunable
    from tests.trainer.helpers import TUNE_MODEL, TUNE_POST, tune_config

    # The export and config of tests/trainer/test_tune.py, so that the programs compile once a run.
    corpus = tmp_path / "posts.txt"
    corpus.write_text("\n".join([TUNE_POST] * 150))
    config = tmp_path / "current.json"
    config.write_text(json.dumps({"model": TUNE_MODEL, "train": tunable(tune_config())}))
    code, out, err = run_main(capsys, "tune", str(corpus), "--steps", "30", "--out", str(tmp_path / "t.json"),
                              "--config", str(config))
    assert code == 0, err
    assert "current config was best" in out or "Best: val loss" in out
    written = json.loads((tmp_path / "t.json").read_text())
    assert set(written) == {"model", "train"} and written["train"]["batch_size"] == tune_config().batch_size


@pytest.mark.slow
def test_train_takes_a_config_file_and_flags_override_it(capsys, tmp_path, caplog):
    from lstm import checkpoint
    from lstm.schema import RunRecord

    corpus = tmp_path / "posts.txt"
    corpus.write_text("\n".join(["good morning friends", "coffee first then code", "lol same"] * 40))
    config = tmp_path / "tuned.json"
    config.write_text(json.dumps({"model": {"hidden": 16, "layers": 2},
                                  "train": {"batch_size": 8, "seq_len": 16, "min_char_count": 1, "minutes": 99}}))
    caplog.set_level(logging.INFO, logger="dann")
    code, _, err = run_main(capsys, "train", str(corpus), "--config", str(config), "--layers", "1", "--steps", "20",
                            "--quiet", "--checkpoint-dir", str(tmp_path / "c"))
    assert code == 0, err
    # It logs who set each hyperparameter: the file, a flag, or the defaults for a small export.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hyperparameters:")]
    assert len(logged) == 1 and "model.hidden 16 (file)" in logged[0] and "model.layers 1 (flag)" in logged[0]
    assert "model.dropout 0.5 (size)" in logged[0] and "train.max_steps 20 (flag)" in logged[0]
    saved = checkpoint.load_latest(tmp_path / "c")
    assert (saved.model.config.hidden, saved.model.config.layers) == (16, 1)
    record = RunRecord.of(saved)
    assert record.config.train.batch_size == 8 and record.config.train.max_steps == 20
    # The checkpoint says who set each field: the file, a flag, or (unnamed) the defaults.
    assert (record.config.source("model", "hidden"), record.config.source("model", "layers")) == ("file", "flag")
    assert (record.config.source("train", "max_steps"), record.config.source("train", "clip_norm")) == ("flag", "default")

    config.write_text(json.dumps({"train": {"batch_sise": 8}}))
    code, _, err = run_main(capsys, "train", str(corpus), "--config", str(config), "--steps", "5",
                            "--checkpoint-dir", str(tmp_path / "d"))
    assert_one_line_error(code, err, "tuned.json", "batch_sise")


FREED_MEMORY_PROBE = """
import ctypes, ctypes.util, resource, sys, threading
from dann.process import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 << 20  # over glibc's largest mmap threshold
def churn():
    for _ in range(3):
        buffer = libc.malloc(SIZE)
        ctypes.memset(buffer, 1, SIZE)  # touch every page
        libc.free(buffer)
def faults(run):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    run()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
def on_a_thread():
    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
churn()  # the first round may fault: the heap grows
print(faults(churn), faults(on_a_thread))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_freed_memory_is_reused_not_faulted_in_again():
    def faults(mode):
        done = subprocess.run([sys.executable, "-c", FREED_MEMORY_PROBE, mode], capture_output=True, text=True,
                              check=True)
        return [int(n) for n in done.stdout.split()]

    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert all(n > pages for n in faults("default"))  # glibc's default: each 64 MB buffer faults in anew
    assert all(n < pages // 100 for n in faults("keep"))  # on the main thread and on a new one


def test_the_training_flags_are_the_schemas_fields():
    """Each flag of `dann train` comes from a field of lstm/schema.py, so a field is written once."""
    from dann.cli import build_parser, training_flags

    args = build_parser().parse_args(["train", "export.zip", "--hidden", "8", "--lr", "0.01", "--cell", "gru",
                                      "--no-ngram-mix", "--bf16", "--eval-every", "5", "--steps", "3"])
    assert training_flags(args) == {
        "model": {"hidden": 8, "cell": "gru"},
        "train": {"learning_rate": 0.01, "eval_every": 5, "ngram_mix": False, "max_steps": 3, "minutes": None},
        "speed": {"bf16": True}}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "export.zip", "--hidden", "0"])  # positive, as the field says
