"""Runtime settings and secrets, in one place: environment variables prefixed DANN_, or a .env file.

Hyperparameters are not here: they live in frozen dataclasses saved inside each checkpoint.
"""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dann.schedule import ScheduleError, cron_trigger, parse_interval, parse_quiet_hours, time_zone
from lstm.errors import DannError


class SettingsError(DannError):
    """A DANN_* setting (from the environment or .env) has a value that cannot be used."""


# Discord ids, written "123, 456" in the environment (NoDecode: not as a JSON list).
DiscordIds = Annotated[list[int], NoDecode]
CommaList = Annotated[list[str], NoDecode]

def discord_ids(value) -> list[int]:
    """Discord ids written "123, 456" (or a list) as numbers; a ValueError names the first bad one."""
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    ids = []
    for part in value or []:
        text = str(part).strip()
        if not text.isdigit() or int(text) <= 0:
            raise ValueError(f"{text!r} is not a Discord id (a number such as 123456789012345678), "
                             "and ids are separated by commas")
        ids.append(int(text))
    return ids


def bucket_url(url: str) -> tuple[str, str]:
    """("bucket", "prefix") of s3://bucket/prefix (the prefix may be empty); a ValueError says what is wrong."""
    scheme, _, rest = url.partition("://")
    if scheme != "s3":
        raise ValueError(f"{scheme}:// is not a checkpoint location dann can use: give a local folder, or "
                         "s3://bucket/prefix (any S3-compatible store, with DANN_S3_ENDPOINT_URL)")
    bucket, _, prefix = rest.partition("/")
    if not 3 <= len(bucket) <= 63 or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise ValueError(f"{bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots "
                         "and hyphens)")
    return bucket, prefix.strip("/")


# The settings come in sections, one per concern, and each process loads only the sections it
# reads (`dann bot`: DiscordSettings; `dann web`: WebSettings; `dann poster`: PosterSettings;
# `dann trainer`: TrainerSettings); the other commands load all of them as `Settings`. Every field
# is a DANN_* variable (or a line of .env); `.env.example` lists them all.


class CommonSettings(BaseSettings):
    """What every process reads."""

    # Empty values (`DANN_DISCORD_GUILD_IDS=` as .env.example ships them) mean "not set".
    model_config = SettingsConfigDict(env_prefix="DANN_", env_file=".env", extra="ignore", env_ignore_empty=True)

    # Where the trainer publishes models and where `dann sample`, the bot and the web page read them:
    # a folder, or s3://bucket/prefix (dann/state/bucket.py). A bucket is mirrored into a folder
    # under checkpoint_cache, which every process then works on as checkpoint_dir; the URL is kept
    # as checkpoint_url.
    checkpoint_dir: Path | str = Path("checkpoints")
    checkpoint_cache: Path = Path("~/.cache/dann/checkpoints")
    # The bucket's S3 endpoint when it is not AWS (MinIO, Cloudflare R2, Google Cloud Storage's
    # interoperability endpoint, a local test server), its region, and its keys. Without keys,
    # boto3's own chain applies (AWS_* variables, ~/.aws, an instance's role).
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # Where compiled XLA programs are kept between processes, so that a restarted bot or the next
    # scheduled run skips most of its compiling (docs/measurements.md). "off": none.
    jax_cache_dir: str = "~/.cache/dann/jax"
    # The LSTM's CPU kernel (lstm/native.py): off runs the pure-JAX scan; native_dir is where the
    # machine's build of it is kept.
    native_lstm: bool = True
    native_dir: str = "~/.cache/dann/native"
    # The state store (dann/state/): the forget list, pauses, schedules, reactions, the game's votes
    # and the poster's record. Empty: SQLite in state.db beside the checkpoints. Every process that
    # shares the checkpoints must see the same database, with write access to its folder (SQLite's
    # WAL files live there).
    database_url: SecretStr | None = None  # it may hold a password
    _checkpoint_url: str | None = PrivateAttr(None)

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _checkpoint_location(cls, value):
        if isinstance(value, str) and "://" in value:
            bucket_url(value)
            return value
        return Path(value)

    def model_post_init(self, context) -> None:
        if isinstance(self.checkpoint_dir, str):  # a bucket: the processes work on its local mirror
            bucket, prefix = bucket_url(self.checkpoint_dir)
            self._checkpoint_url = self.checkpoint_dir
            self.checkpoint_dir = (self.checkpoint_cache.expanduser() / bucket / prefix).absolute()

    @property
    def checkpoint_url(self) -> str | None:
        """The bucket DANN_CHECKPOINT_DIR named (s3://bucket/prefix), or None for a local folder."""
        return self._checkpoint_url


class ExportSettings(CommonSettings):
    """The person's posts: the export the trainer learns from, and their own accounts it keeps
    learning from (dann/poster/learn.py)."""

    # The scheduled trainer (`dann trainer`): the post export it learns from (any format
    # `dann corpus` reads), when it retrains (crontab syntax; weekday 0 and 7 are Sunday, as in
    # cron; day names work too) and in which time zone.
    export_path: Path | None = None
    # DMs and group DMs of a Discord export are private: left out of training unless this is true.
    include_dms: bool = False
    # The person's own accounts (not the bot's): their public posts and replies go into the post
    # store, backfilled once as far as the API allows, then polled before every scheduled run, and
    # every learn_poll_s seconds when set. Mastodon: "@me@server" (its API at https://server unless
    # learn_mastodon_url says otherwise; a token only for a server that hides public posts).
    # Bluesky: the handle, read from the public AppView. X: the user name, with a bearer token.
    learn_mastodon_account: str = ""
    learn_mastodon_url: str = ""
    learn_mastodon_token: SecretStr | None = None
    learn_bluesky_handle: str = ""
    learn_bluesky_url: str = "https://public.api.bsky.app"
    learn_x_user: str = ""
    learn_x_bearer_token: SecretStr | None = None
    learn_x_api_url: str = "https://api.twitter.com"
    learn_poll_s: float | None = Field(None, ge=60, allow_inf_nan=False)
    learn_backfill_max: int = Field(3200, ge=1)  # posts read per account at the first poll


class ServingSettings(CommonSettings):
    """How dann speaks, wherever it speaks: the voice, its filters and the generation service."""

    # Default sampling temperature. 0 is greedy (it loops); 0.4 reads best when the model may coin
    # words, but spelling only known words (known_words) 0.7 passes for the person far more often
    # (docs/fidelity.md). Above ~1.2 is noise.
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    # Longest generated post, in characters.
    max_chars: int = Field(280, ge=1, le=4000)
    # Best-of-n: candidates sampled for each text served; the copy filter and a score pick one
    # (dann/voice/bestof.py). 1 serves the first sample as it is.
    best_of: int = Field(8, ge=1, le=32)
    # Spell only words the person has written (lstm/lexicon.py): made-up words are what most gives
    # a character model away. False lets the model coin words.
    known_words: bool = True
    # How often the bot and the web page look for a newer model, in seconds.
    reload_poll_s: float = Field(10.0, gt=0)
    # Discord user ids of the owners: they may pause the bot everywhere, make it forget phrases,
    # and delete what it said. The person whose voice it is should be one.
    owner_ids: DiscordIds = []
    # Whose voice this is, and who runs dann, as `/dann about` and the web page name them (without
    # an owner name the bot mentions the DANN_OWNER_IDS accounts).
    voice_name: str = ""
    owner_name: str = ""
    # The blocklist of slurs and hate terms ("off": none), plus the owner's own words, one a line.
    blocklist: Literal["on", "off"] = "on"
    blocklist_file: Path | None = None
    # Longest message text used to prime a reply, in characters; the rest is cut.
    max_prompt_chars: int = Field(500, ge=0, le=4000)
    # Conversations: a reply to one of dann's messages addresses it, and the reply chain above it
    # (at most thread_messages earlier messages and thread_chars characters of them) primes the
    # answer. Once a chain holds max_thread_depth of dann's messages, it answers that chain no
    # more, so that two bots cannot talk to each other for hours.
    max_thread_depth: int = Field(6, ge=1, le=50)
    thread_messages: int = Field(6, ge=0, le=50)
    thread_chars: int = Field(1000, ge=0, le=4000)
    # Admission control, for the bot and the web page alike (dann/serving/service.py): candidate
    # rows (texts times DANN_BEST_OF) that may wait at once, beyond which requests are refused as
    # busy, and the seconds a request may take from arrival to answer.
    max_pending_rows: int = Field(1024, ge=1)
    request_deadline_s: float = Field(30.0, gt=0, le=840)  # under Discord's 15 minutes for an interaction
    # "Real or dann?" on the web page: a real post beside one dann wrote, pick the real one. Off by
    # default, because it shows the person's real posts (the served version's validation posts, never
    # DMs; web/game.py). The votes are counted in the state store, which
    # `dann status` and the bot read; DANN_GAME_FILE is where older versions kept them (default:
    # game.json beside the checkpoints), imported once.
    web_game: bool = False
    game_file: Path | None = None
    # Votes one client (an address) may cast on one model version: one person cannot make the tally.
    web_game_votes_per_client: int = Field(30, ge=1)

    @field_validator("owner_ids", mode="before")
    @classmethod
    def _owner_ids(cls, value):
        return discord_ids(value)


class TrainerSettings(ServingSettings, ExportSettings):
    """The trainer (`dann trainer`, `dann train`): its schedule, budget, gate and publish-time
    evaluation (which samples as served, hence the serving section)."""

    # Training time budget for `dann train` (when neither --minutes nor --steps is given) and the trainer.
    train_minutes: float = Field(5.0, gt=0)
    # Train more often on newer posts: a post this many days older than the newest is drawn half as
    # often (docs/learning.md). Empty: off.
    recency_half_life_days: float | None = Field(None, gt=0, allow_inf_nan=False)
    train_cron: str = "0 3 * * *"
    train_timezone: str = "UTC"
    # A run missed while the trainer was down or busy still happens if it is at most this late.
    # APScheduler takes whole seconds above 0 (0 makes the scheduler refuse to start), and a finite number.
    misfire_grace_s: float = Field(6 * 3600, ge=1, allow_inf_nan=False)
    # Publish a new model only if its val loss is at most this much worse than the served one's.
    promote_tolerance: float = Field(0.02, ge=0)
    # ... and only if at most this share of its answers, sampled at publish time, would have been a
    # copy of a training post had the filter not caught it (dann/voice/bestof.py).
    max_copy_rate: float = Field(0.02, ge=0, le=1)
    # Optional JSON file of hyperparameters for the trainer, {"model": {...}, "train": {...}} with the
    # fields of trainer/config.py's ModelSpec and TrainConfig (`dann tune` writes one).
    train_config: Path | None = None
    # Posts and replies the trainer samples to measure a model it publishes (its report's eval.json
    # and `dann status`); 0 skips the measurement.
    publish_eval_samples: int = Field(50, ge=0)
    # The auto-retuner: when a retrain stops lowering the validation loss, run `dann tune` for
    # retune_minutes and use its config (CHECKPOINT_DIR/tuned.json) from the next run on.
    auto_retune: bool = False
    retune_minutes: float = Field(10.0, gt=0)
    # Published versions kept in the checkpoint directory.
    keep_versions: int = Field(5, ge=2)
    # Retrain as soon as this many of the person's posts reached the post store (dann/state/posts.py)
    # since the served model was trained and since the last run began, besides the schedule; checked
    # every new_posts_check_s. None: only the schedule.
    retrain_min_new_posts: int | None = Field(None, ge=1)
    new_posts_check_s: float = Field(300.0, ge=1, allow_inf_nan=False)

    # The schedule is checked when the settings load: found only when the trainer builds its
    # schedule, a bad one would stop `dann trainer` at every start (a restart loop under Docker).
    @field_validator("train_cron")
    @classmethod
    def _cron(cls, value):
        cron_trigger(value)  # in UTC: whether a schedule parses and ever fires does not depend on the zone
        return value

    @field_validator("train_timezone")
    @classmethod
    def _time_zone(cls, value):
        time_zone(value)
        return value


class DiscordSettings(ServingSettings):
    """The Discord bot (`dann bot`)."""

    # The Discord bot token. Never logged, never printed.
    discord_token: SecretStr | None = None
    # Servers (guild ids, comma-separated) the bot may be in: it ignores and leaves any other. Empty:
    # any server it is invited to. `dann bot --sync` copies the slash commands to each listed one
    # (they appear at once) instead of publishing them globally.
    discord_guild_ids: DiscordIds = []
    # Answer DMs from anyone, not only from the owners.
    answer_dms: bool = False
    # Seconds a user, and a channel, must wait between two generations.
    user_cooldown_s: float = Field(10.0, ge=0)
    channel_cooldown_s: float = Field(3.0, ge=0)
    # Generations per minute in one server, and in all of them together; one reply per user is
    # in flight at a time.
    server_per_minute: int = Field(20, ge=1)
    bot_per_minute: int = Field(60, ge=1)
    # Read every message in the channels dann is in: Discord's privileged Message Content intent,
    # which must also be switched on in the Developer Portal. Off: dann reads only the messages that
    # mention it and DMs. Chime-ins (/dann chime) need it.
    read_messages: bool = False
    # Learn from Discord: store the messages the person whose voice it is writes in the servers dann
    # is in (never DMs, anyone else's, bots' or its own) in the post store, with their edits and
    # deletions, for the next training run. Needs the Message Content intent, as read_messages
    # does. Whose messages: voice_ids, or the owners when empty.
    learn_from_discord: bool = False
    voice_ids: DiscordIds = []
    # Least seconds between two chime-ins in one channel.
    chime_gap_s: float = Field(600.0, ge=0)
    # Scheduled posts (/dann autopost) are moved by a random delay of up to this many seconds (and
    # at most a tenth of their interval), so that they do not land on the minute like a machine.
    autopost_jitter_s: float = Field(300.0, ge=0)

    @field_validator("discord_guild_ids", "voice_ids", mode="before")
    @classmethod
    def _guild_ids(cls, value):
        return discord_ids(value)


class PosterSettings(ServingSettings):
    """The poster (`dann poster`) on X, Mastodon and Bluesky."""

    # The poster (`dann poster`): dann as an "ebooks" account on X, Mastodon and Bluesky. It posts
    # every poster_every (a grid from its first start, each post up to poster_jitter_s late at
    # random), not in poster_quiet hours ("23-8", in poster_timezone), and every poster_poll_s
    # answers new mentions (poster_replies; on X also x_replies, as reading mentions costs more).
    # Without poster_live it only prints what it would post (a dry run).
    poster_live: bool = False
    poster_every: str = "6h"
    poster_jitter_s: float = Field(300.0, ge=0)
    poster_timezone: str = "UTC"
    poster_quiet: str = ""
    poster_poll_s: float = Field(60.0, ge=1)
    # One reply per author at most this often: anyone may mention dann, not make it talk all day.
    poster_author_cooldown_s: float = Field(600.0, ge=0)
    poster_replies: bool = True
    # X (API v2, with OAuth 1.0a user keys from the developer portal: all four, or none).
    x_api_key: SecretStr | None = None
    x_api_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_secret: SecretStr | None = None
    x_replies: bool = False
    x_api_url: str = "https://api.twitter.com"
    # Mastodon: the server's address and an access token of the bot account (Preferences ->
    # Development -> New application, scopes read and write); posts' visibility.
    mastodon_url: str = ""
    mastodon_token: SecretStr | None = None
    mastodon_visibility: Literal["public", "unlisted", "private", "direct"] = "unlisted"
    # Bluesky: the account's handle and an app password (Settings -> Privacy and security -> App
    # passwords), and its PDS.
    bluesky_handle: str = ""
    bluesky_app_password: SecretStr | None = None
    bluesky_url: str = "https://bsky.social"

    @field_validator("poster_every")
    @classmethod
    def _poster_every(cls, value):
        try:
            parse_interval(value)
        except ScheduleError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("poster_timezone")
    @classmethod
    def _poster_time_zone(cls, value):
        time_zone(value)
        return value

    @field_validator("poster_quiet")
    @classmethod
    def _poster_quiet(cls, value, info):
        try:
            parse_quiet_hours(value, info.data.get("poster_timezone", "UTC"))
        except ScheduleError as error:
            raise ValueError(str(error)) from None
        return value


class WebSettings(ServingSettings):
    """The web page (`dann web`). It never reads the export: its game deals the served version's
    own published posts."""

    # The web playground.
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    # Generate requests one client may make per minute.
    web_rate_per_minute: int = Field(30, ge=1)
    # Generate requests all clients together may make per minute.
    web_rate_global_per_minute: int = Field(600, ge=1)
    # Where the rate limits are counted: this process's memory, or a Redis server (redis://host:port/db)
    # that every `dann web` replica behind one address shares, so that they hold one limit together.
    rate_limit_storage: str = "memory://"
    # Addresses (or networks, such as 172.16.0.0/12) of the reverse proxies whose X-Forwarded-For
    # names the client, comma-separated. Empty: none, and the peer's address is the client.
    web_trusted_proxies: CommaList = []
    # Connections: at most this many at once, a request's headers within web_header_timeout_s of
    # its first byte (or of the connection), its body within web_body_timeout_s (web/connections.py).
    web_max_connections: int = Field(1024, ge=1)
    web_header_timeout_s: float = Field(5.0, gt=0, le=60)
    web_body_timeout_s: float = Field(10.0, gt=0, le=300)
    # Most candidates one web request may ask for.
    web_max_candidates: int = Field(8, ge=1, le=32)

    @field_validator("web_trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value):
        parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value or [])
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network (such as 10.0.0.2 or "
                                 "172.16.0.0/12); entries are separated by commas") from None
        return parts


class Settings(TrainerSettings, DiscordSettings, PosterSettings, WebSettings):
    """Every section: for the commands that read several (`dann status`, `dann demo`, `dann sample`...)."""


def load_settings(kind: type[CommonSettings] | None = None, **overrides) -> CommonSettings:
    """The settings of `kind` (one process's sections; by default all of them, `Settings`), or a
    SettingsError naming the first bad one as DANN_<NAME>."""
    try:
        return (kind or Settings)(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        field = "DANN_" + "_".join(str(p) for p in first["loc"]).upper()
        raise SettingsError(f"setting {field}: {first['msg']}") from None
