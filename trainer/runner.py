"""`dann trainer`: retrain on a cron schedule with APScheduler 3.x, one trainer per directory.

DANN_TRAIN_CRON is crontab syntax with cron's meaning (weekday 0 and 7 are Sunday); dann/settings.py's
`cron_trigger` turns it into APScheduler's trigger, and refuses, when the settings load, a schedule
that cannot be parsed or never fires, or an unknown DANN_TRAIN_TIMEZONE.

APScheduler's misfire grace and coalescing cover a trainer that was busy or paused at fire time.
A trainer that was not running at all (the machine was off at 03:00) has no memory in a memory
job store, so at start it reads the time of its last run and, if a fire time passed since then
(within the grace time), runs once now.

With DANN_RETRAIN_MIN_NEW_POSTS, a second job counts the person's posts that reached the post store
since the served model was trained, and starts the retrain job at once when there are enough.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from dann.schedule import cron_trigger
from dann.settings import TrainerSettings
from dann.state.posts import post_store
from lstm import checkpoint
from lstm.errors import DannError
from trainer.lock import TrainerLock
from trainer.retrain import RunResult, retrain

log = logging.getLogger("dann.trainer")
HEARTBEAT_S = 60  # docker-compose.yml's trainer healthcheck calls a heartbeat older than 180 s unhealthy


def next_run(settings: TrainerSettings, after: datetime | None = None) -> datetime | None:
    trigger = cron_trigger(settings.train_cron, settings.train_timezone)
    return trigger.get_next_fire_time(None, after or datetime.now(UTC))


def missed_run(trigger: CronTrigger, last_run: datetime | None, now: datetime, grace_s: float) -> bool:
    """Whether a fire time fell between the last run and now, recently enough to make up for."""
    if last_run is None:
        return False
    due = trigger.get_next_fire_time(None, last_run + timedelta(seconds=1))
    return due is not None and due <= now and (now - due).total_seconds() <= grace_s


def last_run_path(settings: TrainerSettings) -> Path:
    return Path(settings.checkpoint_dir) / ".last-run.json"


def heartbeat_path(settings: TrainerSettings) -> Path:
    return Path(settings.checkpoint_dir) / ".trainer-heartbeat"


def read_last_run(settings: TrainerSettings) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(last_run_path(settings).read_text())["started_at"])
    except (OSError, ValueError, KeyError):
        return None


def recorded_run(settings: TrainerSettings, learn=None) -> RunResult:
    """One retrain, with its start time recorded for the missed-run check. `learn()` first polls
    the person's accounts (dann/poster/learn.py, which the command line hands in)."""
    path = last_run_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"started_at": datetime.now(UTC).isoformat()}))
    if learn is not None:
        learn()
    result = retrain(settings)
    log.info("run finished: %s (%s)", result.outcome, result.reason)
    return result


def new_posts(settings: TrainerSettings) -> int:
    """Posts that reached the post store since the served model was trained and since the last run
    began (a run that published nothing must not be started again by the same posts)."""
    since = read_last_run(settings)
    try:
        found = checkpoint.versions(settings.checkpoint_dir)
        trained = checkpoint.read_meta(settings.checkpoint_dir, found[0])["info"].get("trained_at") if found else None
    except (OSError, ValueError, KeyError):
        trained = None
    moments = [m for m in (since, datetime.fromisoformat(trained) if trained else None) if m is not None]
    return post_store(settings).new_since(max(moments).timestamp() if moments else 0.0)


def check_new_posts(settings: TrainerSettings, scheduler) -> bool:
    """Start the retrain job now when DANN_RETRAIN_MIN_NEW_POSTS posts have arrived. Returns whether it did."""
    try:
        arrived = new_posts(settings)
    except (DannError, OSError) as error:
        log.warning("cannot count the new posts: %s", error)
        return False
    if arrived < settings.retrain_min_new_posts:
        return False
    log.info("%d new post(s) since the served model was trained (DANN_RETRAIN_MIN_NEW_POSTS=%d): retraining now",
             arrived, settings.retrain_min_new_posts)
    scheduler.modify_job("retrain", next_run_time=datetime.now(UTC))
    return True


def scheduled_run(settings: TrainerSettings, learn=None) -> None:
    """One run as the scheduler calls it: any failure is logged and the schedule goes on."""
    try:
        recorded_run(settings, learn)
    except (DannError, OSError) as error:  # a missing export today may be back tomorrow
        log.error("run failed: %s", error)
    except Exception:
        log.exception("run failed unexpectedly")


def run_trainer(settings: TrainerSettings, once: bool = False, now: bool = False, learn=None) -> RunResult | None:
    """`dann trainer`: --once runs one retrain and returns; otherwise follow the schedule (forever),
    starting with a run when --now is given or a scheduled run was missed. `learn()`, when given,
    polls the person's accounts before every run, and every DANN_LEARN_POLL_S when set."""
    trigger = cron_trigger(settings.train_cron, settings.train_timezone)
    with TrainerLock(settings.checkpoint_dir):
        if once:
            return recorded_run(settings, learn)  # errors go to the caller: one line at the CLI
        scheduler = BlockingScheduler(
            timezone=trigger.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(settings.misfire_grace_s)},
        )
        current = datetime.now(UTC)
        if missed_run(trigger, read_last_run(settings), current, settings.misfire_grace_s):
            log.info("a scheduled run was missed while the trainer was not running; running once now")
            now = True
        scheduler.add_job(scheduled_run, trigger, args=[settings, learn], id="retrain", name="retrain",
                          **({"next_run_time": current} if now else {}))
        # The container healthcheck's heartbeat. It runs on the scheduler's worker threads like a
        # retrain, so it keeps beating through a long run and stops if the scheduler itself hangs.
        scheduler.add_job(heartbeat_path(settings).touch, "interval", seconds=HEARTBEAT_S, id="heartbeat",
                          next_run_time=current)
        if learn is not None and settings.learn_poll_s is not None:
            scheduler.add_job(learn, "interval", seconds=settings.learn_poll_s, id="learn")
        if settings.retrain_min_new_posts is not None:
            scheduler.add_job(check_new_posts, "interval", seconds=settings.new_posts_check_s, id="new-posts",
                              args=[settings, scheduler])

        def say_next(event):
            if event.job_id != "retrain":
                return
            if event.code == EVENT_JOB_MISSED:
                log.warning("a run was missed (the previous one was still going)")
            log.info("next run at %s", scheduler.get_job("retrain").next_run_time)

        scheduler.add_listener(say_next, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        log.info("trainer started: schedule %r (%s), next run at %s", settings.train_cron, settings.train_timezone,
                 "now" if now else trigger.get_next_fire_time(None, current))
        scheduler.start()
    return None
