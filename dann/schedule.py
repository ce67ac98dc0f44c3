"""When dann speaks unprompted, for the Discord bot's autoposts (bot/autopost.py) and the poster
(dann/poster/): intervals ("6h"), quiet hours ("from 23 to 8 in Europe/Berlin"), the grid of
due times with a jitter that never accumulates, and the one scheduler both run their posts on
(PostingGrid).

What a person types is parsed here into values, or a ScheduleError with the one line they see.
"""

import datetime
import math
import random
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from lstm.errors import DannError

MIN_INTERVAL_S = 10 * 60  # more often than this is spam, whatever the admin wants
MAX_INTERVAL_S = 30 * 24 * 3600
UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400}


class ScheduleError(DannError):
    """An interval or quiet hours that cannot be used."""


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone (e.g. UTC, Europe/Berlin)") from None


def parse_interval(text: str) -> float:
    """"90m", "6h", "1.5d" -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*", text.lower())
    if not match:
        raise ScheduleError(f"{text!r} is not an interval: write a number and m, h or d, such as 90m, 6h or 1d")
    seconds = float(match[1]) * UNITS[match[2]]
    if seconds < MIN_INTERVAL_S:
        raise ScheduleError(f"every {text.strip()} is too often: the shortest interval is 10 minutes (10m)")
    if seconds > MAX_INTERVAL_S:
        raise ScheduleError(f"every {text.strip()} is too rare: the longest interval is 30 days (30d)")
    return seconds


def interval_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds / 60:g}m"


def parse_quiet(start: int, end: int, zone: str) -> dict:
    """Quiet hours from `start` o'clock to `end` o'clock in `zone` (wrapping round midnight)."""
    for hour in (start, end):
        if not 0 <= hour <= 23:
            raise ScheduleError(f"{hour} is not an hour: quiet hours go from 0 to 23")
    if start == end:
        raise ScheduleError("quiet hours need two different hours, such as from 23 to 8")
    try:
        time_zone(zone)
    except ValueError as error:
        raise ScheduleError(str(error)) from None
    return {"from": start, "to": end, "tz": zone}


def parse_quiet_hours(text: str, zone: str) -> dict | None:
    """A setting such as "23-8" (empty: none) as quiet hours in `zone`."""
    if not text.strip():
        return None
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", text)
    if not match:
        raise ScheduleError(f"{text!r} is not quiet hours: write the hours it starts and ends, such as 23-8")
    return parse_quiet(int(match[1]), int(match[2]), zone)


def is_quiet(quiet: dict | None, moment: datetime.datetime) -> bool:
    """Whether `moment` (aware) falls inside these quiet hours: from the start hour up to, not
    including, the end hour, in the hours' own time zone."""
    if not quiet:
        return False
    hour = moment.astimezone(ZoneInfo(quiet["tz"])).hour
    start, end = quiet["from"], quiet["to"]
    return start <= hour < end if start < end else hour >= start or hour < end


def slot_at(now: float, since: float, every_s: float) -> int:
    """The number of the last grid point since + k * every_s at or before `now` (0: `since` itself)."""
    return math.floor((now - since) / every_s)


class GridTrigger(IntervalTrigger):
    """IntervalTrigger whose jitter does not carry over: each run is due at the next point of the
    grid start_date + k * interval after the previous run, plus a fresh jitter. APScheduler's own
    adds the interval to the jittered time, so a 6-hour schedule would drift later every day."""

    def get_next_fire_time(self, previous_fire_time, now):
        start = self.start_date.timestamp()
        if previous_fire_time is None:
            slot = max(0, math.ceil((now.timestamp() - start) / self.interval_length))
        else:
            slot = slot_at(previous_fire_time.timestamp(), start, self.interval_length) + 1
        due = start + slot * self.interval_length
        if self.jitter:
            due += random.uniform(0, self.jitter)
        return datetime.datetime.fromtimestamp(due, tz=self.timezone)


class PostingGrid:
    """Posts on a grid, on APScheduler's AsyncIOScheduler in the caller's event loop: one job per
    key (a Discord channel, a poster destination), and polling jobs beside them.

    - A grid job runs at since + k * every_s, each run moved by its own jitter (at most a tenth of
      the interval) that never accumulates (GridTrigger).
    - `max_instances=1`: a slow run is never overtaken by the next.
    - Runs missed while the process was down are made up by one run when it is back (coalescing,
      with a misfire grace of one interval), not one per missed run: the caller says when its last
      run was, and the first run is the first grid point after it.
    Quiet hours and pauses are the caller's to check when a run comes: they skip a run, not the grid.
    """

    def __init__(self, clock=lambda: datetime.datetime.now(datetime.UTC)):
        self.clock = clock
        self.scheduler = AsyncIOScheduler(timezone=datetime.UTC)

    @property
    def running(self) -> bool:
        return self.scheduler.running

    def start(self) -> None:
        """Start running the jobs; call it with the event loop running."""
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def add(self, key: str, run, args: list, *, every_s: float, since: float, last: float | None,
            jitter_s: float) -> datetime.datetime:
        """Run `run(*args)` on the grid from `since` (Unix seconds), replacing `key`'s job. `last`:
        when it last ran (None: never, and the first run is one interval after `since`). Returns
        the first run."""
        utc = datetime.UTC
        trigger = GridTrigger(seconds=every_s, start_date=datetime.datetime.fromtimestamp(since, utc), timezone=utc,
                              jitter=min(jitter_s, every_s / 10) or None)
        # If the first grid point after the last run is in the past, APScheduler runs it at once:
        # one run for all that were missed (coalesced), as it is within the grace.
        previous = datetime.datetime.fromtimestamp(since if last is None else last, utc)
        due = trigger.get_next_fire_time(previous, self.clock())
        self.scheduler.add_job(run, trigger, args=args, id=key, name=key, replace_existing=True, coalesce=True,
                               max_instances=1, misfire_grace_time=max(1, int(every_s)), next_run_time=due)
        return due

    def every(self, key: str, run, args: list, seconds: float) -> None:
        """Run `run(*args)` now and every `seconds` after (polling), never two at once."""
        self.scheduler.add_job(run, IntervalTrigger(seconds=seconds, timezone=datetime.UTC), args=args, id=key,
                               name=key, replace_existing=True, coalesce=True, max_instances=1,
                               next_run_time=self.clock())

    def once(self, key: str, run, args: list, after_s: float) -> None:
        """Run `run(*args)` once, `after_s` from now (a retry), replacing `key`'s job."""
        self.scheduler.add_job(run, "date", run_date=self.clock() + datetime.timedelta(seconds=after_s), args=args,
                               id=key, name=key, replace_existing=True, misfire_grace_time=None)

    def remove(self, key: str) -> None:
        if self.scheduler.get_job(key) is not None:
            self.scheduler.remove_job(key)

    def next_run(self, key: str) -> datetime.datetime | None:
        job = self.scheduler.get_job(key) if self.scheduler.running else None
        return None if job is None else job.next_run_time


# DANN_TRAIN_CRON is crontab syntax with cron's meaning: weekday 0 and 7 are Sunday, 1 is Monday.
# APScheduler counts 0 as Monday, so the weekday field is rewritten into day names (which mean the
# same to both) before APScheduler sees it. The settings parse the schedule
# as they load (dann/settings.py), so that a schedule the trainer could not follow is refused at
# start, and the trainer (trainer/runner.py) builds its trigger with the same function.
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(field: str) -> str:
    """A crontab weekday field (0-7, names, ranges, lists, steps) as APScheduler day names."""
    if field == "*":
        return "*"

    def day(token: str) -> int:
        token = token.strip().lower()
        if token[:3] in DAY_NAMES:
            return DAY_NAMES.index(token[:3])
        if token.isdigit() and int(token) <= 7:
            return int(token)
        raise ValueError(f"weekday {token!r} is not 0-7 or a day name")

    days = set()
    for part in field.split(","):
        part, _, step = part.partition("/")
        if part == "*":
            low, high = 0, 6
        elif "-" in part:
            low, high = (day(t) for t in part.split("-", 1))
        else:
            low = day(part)
            high = 6 if step else low  # cron reads "1/2" as "from 1 to the end, every 2nd"
        if high < low:
            raise ValueError(f"weekday range {part!r} runs backwards")
        if step and not (step.isdigit() and int(step) > 0):
            raise ValueError(f"weekday step {step!r} is not a whole number above 0")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))  # 7 is Sunday, as 0 is
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str, zone: str = "UTC") -> CronTrigger:
    """The schedule as APScheduler's trigger; a ValueError says why it cannot be one."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} needs 5 fields: minute hour day month weekday")
    timezone = time_zone(zone)
    minute, hour, day, month, weekday = fields
    try:
        trigger = CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=cron_weekdays(weekday),
                              timezone=timezone)
    except ValueError as error:  # APScheduler's word for a field it cannot parse, and cron_weekdays'
        raise ValueError(f"{expression!r}: {error}") from None
    # APScheduler accepts a day no month has ("0 0 31 2 *") and then never fires: the trainer would
    # sit idle for good, saying only "next run at None".
    if trigger.get_next_fire_time(None, datetime.datetime.now(timezone)) is None:
        raise ValueError(f"{expression!r} never fires: no date matches it (such as 31 February)")
    return trigger
