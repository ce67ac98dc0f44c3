"""Settings that would fail later are refused when they load: one line, naming DANN_<NAME>."""

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from dann.settings import SettingsError, load_settings


def refused(monkeypatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert message.startswith(f"setting {name}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("value", ["0", "0.5", "-1", "inf", "nan"])
def test_a_misfire_grace_apscheduler_cannot_take_is_refused(monkeypatch, value):
    refused(monkeypatch, "DANN_MISFIRE_GRACE_S", value)


def test_the_least_misfire_grace_accepted_is_one_apscheduler_starts_with(monkeypatch):
    def starts(grace_s) -> bool:
        scheduler = BackgroundScheduler(job_defaults={"misfire_grace_time": grace_s})
        scheduler.add_job(print, "interval", hours=1)
        try:
            scheduler.start()  # where APScheduler checks the job's defaults
        except TypeError:
            return False
        scheduler.shutdown(wait=False)
        return True

    monkeypatch.setenv("DANN_MISFIRE_GRACE_S", "1")
    least = int(load_settings(_env_file=None).misfire_grace_s)  # as trainer/runner.py passes it
    assert starts(least) and not starts(least - 1)


@pytest.mark.parametrize("value, words", [
    ("every day", "needs 5 fields"),
    ("0 3 * * 8", "weekday '8'"),
    ("0 25 * * *", "25"),
    ("0 0 31 2 *", "never fires"),
    ("0 0 30 2 *", "never fires"),
])
def test_a_schedule_the_trainer_could_not_follow_is_refused(monkeypatch, value, words):
    assert words in refused(monkeypatch, "DANN_TRAIN_CRON", value)


@pytest.mark.parametrize("value", ["Mars/Olympus", "Europe/Berln", "/etc/localtime", "../UTC"])
def test_an_unknown_time_zone_is_refused(monkeypatch, value):
    assert "not a known time zone" in refused(monkeypatch, "DANN_TRAIN_TIMEZONE", value)


def test_good_schedules_load(monkeypatch):
    monkeypatch.setenv("DANN_TRAIN_CRON", "30 4 29 2 sun")  # rare, but it fires
    monkeypatch.setenv("DANN_TRAIN_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("DANN_MISFIRE_GRACE_S", "1")
    settings = load_settings(_env_file=None)
    assert (settings.train_cron, settings.train_timezone, settings.misfire_grace_s) == (
        "30 4 29 2 sun", "Europe/Berlin", 1)


def test_every_setting_is_in_env_example():
    from pathlib import Path

    from dann.settings import Settings

    example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"DANN_{name.upper()}=" not in example]
    assert missing == []
