"""Errors at every edge: an expected failure (a DannError) is one line for the person, and anything
else, a ValueError from inside numpy included, is a bug that keeps its traceback.

The edges: the `dann` command (every subcommand), the trainer's scheduled run, the web API and
the Discord bot."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dann.cli import main
from dann.serving.service import Generation
from dann.settings import Settings
from lstm.errors import DannError
from tests.helpers import assert_one_line_error, run_main

ROOT = Path(__file__).parents[1]


def library_bug(*args, **kwargs):
    """What a bug inside a library looks like: numpy raising ValueError."""
    return np.zeros(2).reshape(3)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No DANN_ setting from the environment, and a checkpoint directory of this test's own."""
    for name in ("DANN_EXPORT_PATH", "DANN_DISCORD_TOKEN", "DANN_TRAIN_CRON", "DANN_TEMPERATURE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.chdir(tmp_path)  # no .env here
    return tmp_path


@pytest.mark.parametrize("argv, env, words", [
    (["train", "missing.txt"], {}, ["missing.txt", "no such file"]),
    (["corpus", "missing.zip"], {}, ["missing.zip", "no such file"]),
    (["sample"], {}, ["no checkpoint"]),
    (["eval"], {}, ["export"]),
    (["tune", "missing.txt"], {}, ["missing.txt"]),
    (["trainer", "--once"], {}, ["DANN_EXPORT_PATH"]),
    (["status"], {"DANN_TRAIN_CRON": "every day"}, ["DANN_TRAIN_CRON"]),
    (["bench", "sample"], {"DANN_TEMPERATURE": "-1"}, ["DANN_TEMPERATURE"]),
    (["bot"], {}, ["DANN_DISCORD_TOKEN"]),
    (["web", "--port", "70000"], {}, ["70000"]),
    (["demo", "--no-web"], {"DANN_MAX_CHARS": "0"}, ["DANN_MAX_CHARS"]),
    (["forget"], {}, ["a phrase to forget, --list, or --remove"]),
    (["forget", " ... "], {}, ["no letters or digits"]),
    (["forget", "x" * 5000], {}, ["at most 500 characters", "5000"]),
    (["forget", "--remove", "never added"], {}, ["not on the forget list"]),
    (["status"], {"DANN_OWNER_IDS": "12345, alice"}, ["DANN_OWNER_IDS", "'alice' is not a Discord id"]),
    (["web", "--port", "0"], {"DANN_BLOCKLIST_FILE": "missing-words.txt"}, ["missing-words.txt", "no such file"]),
])
def test_every_subcommand_says_an_expected_failure_in_one_line(capsys, clean_env, monkeypatch, argv, env, words):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_main(capsys, *argv)
    assert_one_line_error(code, err, *words)


@pytest.mark.parametrize("argv, target", [
    (["corpus", "posts.txt", "--stats"], "trainer.corpus.Corpus.stats"),
    (["train", "posts.txt", "--steps", "1"], "trainer.data.prepare"),
    (["status"], "dann.serving.status.summary"),
])
def test_a_library_value_error_is_not_taken_for_bad_input(clean_env, monkeypatch, argv, target, trained_dir):
    (clean_env / "posts.txt").write_text("one post\nanother post\n" * 20)
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(trained_dir))
    monkeypatch.setattr(target, library_bug)
    with pytest.raises(ValueError, match="cannot reshape"):
        main(argv)


def test_the_command_shows_a_bugs_traceback(tmp_path):
    posts = tmp_path / "posts.txt"
    posts.write_text("one post\nanother post\n")
    script = ("import sys, numpy, trainer.corpus\n"
              "trainer.corpus.Corpus.stats = lambda self: numpy.zeros(2).reshape(3)\n"
              "from dann.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "corpus", str(posts), "--stats"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "ValueError: cannot reshape" in done.stderr
    assert "dann: error" not in done.stderr


def test_the_scheduled_run_logs_expected_failures_in_one_line_and_bugs_with_their_traceback(tmp_path, monkeypatch,
                                                                                           caplog):
    from trainer import runner as schedule

    settings = Settings(_env_file=None, checkpoint_dir=tmp_path, export_path=tmp_path / "gone.zip")
    caplog.set_level(logging.INFO, logger="dann.trainer")
    schedule.scheduled_run(settings)  # the export is missing today: expected, and the schedule goes on
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failed) == 1 and "gone.zip" in failed[0].getMessage() and failed[0].exc_info is None
    assert "\n" not in failed[0].getMessage()

    caplog.clear()
    monkeypatch.setattr(schedule, "retrain", library_bug)
    schedule.scheduled_run(settings)
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failed) == 1 and failed[0].exc_info is not None and failed[0].exc_info[0] is ValueError


class FailingService:
    """A generation service whose requests fail with `error`."""

    current = None

    def __init__(self, error: Exception):
        self.error = error

    def status(self):
        return None

    async def generate(self, request, **_) -> Generation:
        raise self.error


@pytest.mark.parametrize("error, status, logged", [(DannError("the prompt cannot be read"), 422, False),
                                                   (ValueError("cannot reshape array"), 500, True)])
def test_the_web_api_answers_expected_failures_in_one_line_and_logs_bugs(tmp_path, caplog, error, status, logged):
    from tests.web.helpers import make_settings, one_line, request
    from web.app import create_app

    caplog.set_level(logging.ERROR, logger="dann.web")
    app = create_app(make_settings(tmp_path), service=FailingService(error))
    response = request(app, "POST", "/api/generate", json={"mode": "post"})
    assert response.status_code == status
    detail = one_line(response)
    assert ("prompt cannot be read" in detail) != logged  # a bug's text is logged, not shown
    traced = [r for r in caplog.records if r.exc_info]
    assert bool(traced) == logged and (not logged or traced[0].exc_info[0] is ValueError)


@pytest.mark.parametrize("error, logged", [(DannError("the model is resting"), False),
                                           (ValueError("cannot reshape array"), True)])
async def test_the_bot_says_expected_failures_and_logs_bugs(tmp_path, caplog, error, logged):
    from bot.discord_bot import SORRY, create_bot

    caplog.set_level(logging.ERROR, logger="dann.discord")
    bot = create_bot(Settings(_env_file=None, checkpoint_dir=tmp_path), service=FailingService(error))
    said = await bot.speak("post")
    assert said == (SORRY if logged else "the model is resting", None)
    traced = [r for r in caplog.records if r.exc_info]
    assert bool(traced) == logged


def test_a_prompt_holding_a_blocked_or_forgotten_term_is_one_line(capsys, clean_env, monkeypatch):
    (clean_env / "words.txt").write_text("dishwasher\n")
    monkeypatch.setenv("DANN_BLOCKLIST_FILE", "words.txt")
    code, _, err = run_main(capsys, "sample", "--prompt", "dishwasherndd", "-n", "2")
    assert_one_line_error(code, err, "the prompt holds a blocked term; dann will not say it")
    assert run_main(capsys, "forget", "my secret plan")[0] == 0
    code, _, err = run_main(capsys, "sample", "--prompt", "MySecretPlan")
    assert_one_line_error(code, err, "the prompt holds a phrase dann was asked to forget")
