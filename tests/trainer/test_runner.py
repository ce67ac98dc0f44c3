import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from dann.schedule import cron_trigger, cron_weekdays
from trainer.runner import missed_run

UTC = UTC


@pytest.mark.parametrize("field, names", [
    ("*", "*"),
    ("0", "sun"),
    ("7", "sun"),  # cron: 0 and 7 are both Sunday; APScheduler alone would call 0 Monday
    ("1", "mon"),
    ("1-5", "mon,tue,wed,thu,fri"),
    ("5-7", "sun,fri,sat"),
    ("*/2", "sun,tue,thu,sat"),
    ("mon-fri", "mon,tue,wed,thu,fri"),
    ("sat,sun", "sun,sat"),
])
def test_weekdays_keep_crons_meaning(field, names):
    assert cron_weekdays(field) == names


@pytest.mark.parametrize("expression, words", [
    ("0 3 * *", "needs 5 fields"),
    ("0 3 * * 8", "weekday '8'"),
    ("61 3 * * *", "61"),
    ("0 3 * * 5-1", "runs backwards"),
    ("0 3 * * */0", "step '0'"),
    ("0 0 31 2 *", "never fires"),  # APScheduler takes it, and its next fire time is None
    ("0 0 31 4,6,9,11 *", "never fires"),
])
def test_bad_schedules_are_clear_errors(expression, words):
    with pytest.raises(ValueError, match=words):
        cron_trigger(expression, "UTC")


def test_a_leap_day_schedule_fires():
    assert cron_trigger("0 0 29 2 *", "UTC").get_next_fire_time(None, datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2028, 2, 29, tzinfo=UTC)


def test_unknown_time_zone():
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a known time zone"):
        cron_trigger("0 3 * * *", "Mars/Olympus")


def test_next_run_of_a_sunday_schedule_is_a_sunday():
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for expression in ("0 3 * * 0", "0 3 * * 7", "0 3 * * sun"):
        fire = cron_trigger(expression, "UTC").get_next_fire_time(None, wednesday)
        assert fire == datetime(2026, 11, 29, 3, 0, tzinfo=UTC), expression


def test_nightly_in_a_time_zone():
    fire = cron_trigger("0 3 * * *", "Europe/Berlin").get_next_fire_time(None, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 03:00 CET is 02:00 UTC


def test_a_run_missed_while_the_machine_was_off_is_made_up_once():
    nightly = cron_trigger("0 3 * * *", "UTC")
    last = datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC)  # Sunday's run happened
    assert missed_run(nightly, last, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), grace_s=6 * 3600)  # off at Monday 03:00
    assert not missed_run(nightly, last, datetime(2026, 11, 23, 2, 0, tzinfo=UTC), grace_s=6 * 3600)  # not due yet
    assert not missed_run(nightly, last, datetime(2026, 11, 23, 10, 0, tzinfo=UTC), grace_s=6 * 3600)  # too late
    assert not missed_run(nightly, None, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), grace_s=6 * 3600)


@pytest.mark.parametrize("name, value", [
    ("DANN_MISFIRE_GRACE_S", "0"),  # APScheduler refuses it when the scheduler starts
    ("DANN_TRAIN_CRON", "0 0 31 2 *"),  # APScheduler takes it and never fires
    ("DANN_TRAIN_TIMEZONE", "Mars/Olympus"),
])
def test_the_trainer_refuses_a_setting_it_could_not_run_with_in_one_line_at_start(tmp_path, name, value):
    export = tmp_path / "posts.txt"
    export.write_text("hello\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANN_")}
    env.update({"JAX_PLATFORMS": "cpu", "DANN_EXPORT_PATH": str(export), "DANN_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
                name: value})
    done = subprocess.run([sys.executable, "-m", "dann.cli", "trainer"], check=False, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # cwd: no .env there
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"dann: error: setting {name}: "), done.stderr
    assert not (tmp_path / "ckpt").exists()  # refused before it took the lock or beat once
