from datetime import UTC, datetime

import pytest

from trainer.config import ConfigError
from trainer.schedule import cron_trigger, cron_weekdays, missed_run

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


@pytest.mark.parametrize("expression", ["0 3 * *", "0 3 * * 8", "61 3 * * *", "0 3 * * 5-1"])
def test_bad_schedules_are_clear_errors(expression):
    with pytest.raises(ConfigError, match="DANN_TRAIN_CRON|weekday"):
        cron_trigger(expression, "UTC")


def test_unknown_time_zone():
    with pytest.raises(ConfigError, match="DANN_TRAIN_TIMEZONE"):
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
