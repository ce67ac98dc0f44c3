"""The container deployment: both compose files as `docker-compose config` reads them, the
healthchecks run against real `dann` processes, and the image's install against pyproject.toml.

No Docker daemon is needed: `docker-compose config` only parses and resolves. The image itself is
not built here."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="Debian's docker-compose package is not installed "
                                   "(.ci/run installs it: apt-get install docker-compose)")
GPU = {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


TOKEN = "the-bots-token.not-a-real-one"


def compose_config(tmp_path: Path, *names: str, dot_env: str = "",
                   bot_env: str = f"DANN_DISCORD_TOKEN={TOKEN}\n", poster_env: str = "",
                   profiles: tuple[str, ...] = ()) -> dict:
    """`docker-compose -f NAME [-f NAME…] config`, run on copies beside .env.example as .env (plus the
    lines `dot_env`) and a bot.env holding `bot_env`, the token as the deployment docs have it: the
    developer's own .env and bot.env are never read, and nothing depends on them existing."""
    for file in ("docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.game.yml"):
        shutil.copy(ROOT / file, tmp_path / file)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + "\n" + dot_env)
    (tmp_path / "bot.env").write_text(bot_env)
    (tmp_path / "poster.env").write_text(poster_env)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DANN_", "COMPOSE_"))}
    files = [option for name in names for option in ("-f", name)]
    files += [option for profile in profiles for option in ("--profile", profile)]
    result = subprocess.run([COMPOSE, *files, "config"], check=False, cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # What `up` starts: a service with profiles only when one of them is asked for.
    return {name: service for name, service in yaml.safe_load(result.stdout)["services"].items()
            if not service.get("profiles") or set(service["profiles"]) & set(profiles)}


def gpus(service: dict) -> list:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


@needs_compose
def test_the_trainer_reserves_a_gpu_and_the_bot_and_web_page_run_on_the_cpu(tmp_path):
    services = compose_config(tmp_path, "docker-compose.yml")
    assert set(services) == {"trainer", "bot", "web"}
    assert gpus(services["trainer"]) == [GPU]
    assert services["trainer"]["environment"]["JAX_PLATFORMS"] == "cuda"  # no silent fallback to the CPU
    for name in ("bot", "web"):
        assert gpus(services[name]) == [] and services[name]["environment"]["JAX_PLATFORMS"] == "cpu"


@needs_compose
def test_the_cpu_file_runs_everything_without_a_gpu(tmp_path):
    services = compose_config(tmp_path, "docker-compose.cpu.yml")
    assert set(services) == {"trainer", "bot", "web"}
    for name, service in services.items():
        assert gpus(service) == [] and service["environment"]["JAX_PLATFORMS"] == "cpu", name
        assert service["image"] == "dann:cpu" and service["build"]["args"]["JAX_EXTRA"] == "", name
    gpu_file = compose_config(tmp_path, "docker-compose.yml")
    assert services["bot"] == gpu_file["bot"] and services["web"] == gpu_file["web"]
    trainer, gpu_trainer = dict(services["trainer"]), dict(gpu_file["trainer"])
    for key in ("build", "image", "environment", "deploy"):  # what may differ: the rest must not drift
        trainer.pop(key, None), gpu_trainer.pop(key, None)
    assert trainer == gpu_trainer


@needs_compose
@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.cpu.yml"])
def test_only_the_trainer_writes_the_checkpoints_every_service_shares_the_state_and_nobody_writes_the_export(
        tmp_path, name):
    services = compose_config(tmp_path, name)
    for service_name, service in services.items():
        assert service["restart"] == "unless-stopped", service_name
        assert service["environment"]["DANN_TRAIN_CRON"] == "0 3 * * *", service_name  # read from .env
        mounts = {volume.split(":")[1]: volume for volume in service["volumes"]}
        writable = service_name == "trainer"
        assert mounts["/data/checkpoints"] == f"checkpoints:/data/checkpoints:{'rw' if writable else 'ro'}"
        assert service["environment"]["DANN_CHECKPOINT_DIR"] == "/data/checkpoints"
        # One state database for all: read-write everywhere, since SQLite's WAL files live beside it.
        assert mounts["/data/state"] == "state:/data/state:rw"
        assert service["environment"]["DANN_DATABASE_URL"] == "sqlite:////data/state/state.db"
    assert any(volume.endswith("/export:/data/export:ro") for volume in services["trainer"]["volumes"])
    assert services["trainer"]["environment"]["DANN_EXPORT_PATH"].startswith("/data/export/")
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000/tcp"]  # this machine only
    assert services["web"]["environment"]["DANN_WEB_HOST"] == "0.0.0.0"  # inside the container: every interface
    assert "/data/export" not in {volume.split(":")[1] for volume in services["web"]["volumes"]}


@needs_compose
@pytest.mark.parametrize("base", ["docker-compose.yml", "docker-compose.cpu.yml"])
def test_the_game_never_gives_the_web_page_the_export_and_gives_the_votes_to_the_bot(tmp_path, base):
    services = compose_config(tmp_path, base, "docker-compose.game.yml")
    web, bot = services["web"], services["bot"]
    assert web["environment"]["DANN_WEB_GAME"] == "true"
    web_mounts = {volume.split(":")[1]: volume for volume in web["volumes"]}
    # The real posts come from the published version (its showable posts), never from the export.
    assert not any("export" in volume for volume in web["volumes"]), web["volumes"]
    assert web_mounts["/data/checkpoints"].endswith(":ro")
    # The votes go to the state database, which the bot reads for /dann status.
    assert "state:/data/state:rw" in web["volumes"] and "state:/data/state:rw" in bot["volumes"]
    assert web["environment"]["DANN_DATABASE_URL"] == bot["environment"]["DANN_DATABASE_URL"]
    assert web_mounts["/data/game"] == "game:/data/game:ro"  # older versions' votes, imported once
    assert web["environment"]["DANN_GAME_FILE"] == "/data/game/votes.json"


COMBINATIONS = [("docker-compose.yml",), ("docker-compose.cpu.yml",),
                ("docker-compose.yml", "docker-compose.game.yml"),
                ("docker-compose.cpu.yml", "docker-compose.game.yml")]


@needs_compose
@pytest.mark.parametrize("names", COMBINATIONS, ids="+".join)
@pytest.mark.parametrize("in_dot_env, in_bot_env", [
    (None, TOKEN),  # as documented: in bot.env
    (TOKEN, None),  # left in .env, which every service reads
    ("an-old-token", TOKEN),  # both: bot.env wins
], ids=["bot.env", "left in .env", "both"])
def test_only_the_bot_has_the_discord_token(tmp_path, names, in_dot_env, in_bot_env):
    line = "DANN_DISCORD_TOKEN={}\n".format
    services = compose_config(tmp_path, *names, dot_env=line(in_dot_env) if in_dot_env else "",
                              bot_env=line(in_bot_env) if in_bot_env else "")
    assert set(services) == {"trainer", "bot", "web"}
    assert services["bot"]["environment"]["DANN_DISCORD_TOKEN"] == TOKEN
    for name in ("trainer", "web"):
        environment = services[name]["environment"]
        assert environment.get("DANN_DISCORD_TOKEN", "") == "", name  # empty: the settings read it as no token
        assert "token" not in json.dumps(services[name]), name  # nor under another name, nor the old one


POSTER_KEY = "the-posters-mastodon-token"


@needs_compose
def test_the_poster_runs_only_when_asked_for_and_alone_holds_its_keys(tmp_path):
    poster_env = f"DANN_MASTODON_TOKEN={POSTER_KEY}\nDANN_POSTER_LIVE=true\n"
    assert "poster" not in compose_config(tmp_path, "docker-compose.yml", poster_env=poster_env)  # off by default
    services = compose_config(tmp_path, "docker-compose.yml", poster_env=poster_env, profiles=("poster",))
    poster = services["poster"]
    assert poster["profiles"] == ["poster"]  # what keeps it off unless asked for
    assert poster["command"] == ["dann", "poster"] and poster["image"] == "dann:cpu" and gpus(poster) == []
    assert poster["environment"]["DANN_MASTODON_TOKEN"] == POSTER_KEY and poster["environment"]["DANN_POSTER_LIVE"] == "true"
    assert poster["environment"].get("DANN_DISCORD_TOKEN", "") == ""
    assert "state:/data/state:rw" in poster["volumes"]  # what was posted and answered
    for name in ("trainer", "bot", "web"):
        assert POSTER_KEY not in json.dumps(services[name]), name


# --- the documented steps, run as written ---------------------------------------------------------

# `docker compose ...` and `docker-compose ...` in the docs become `docker-compose [-f FILE...]
# [--profile P...] config`, written to compose-N.yml: what `up` would start, resolved, no daemon.
SHIM = r"""
set -euo pipefail
n=0
compose() {
  local args=()
  for a in "$@"; do case $a in up|logs|exec|run|stop|start|ps|down) break;; *) args+=("$a");; esac; done
  n=$((n + 1)); command docker-compose "${args[@]}" config > "compose-$n.yml"
}
docker() { [ "$1" = compose ] && shift; compose "$@"; }
docker-compose() { compose "$@"; }
"""


def bash_block(markdown: Path, after: str) -> str:
    """The first ```bash block after the line holding `after`."""
    text = markdown.read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(after):], re.S)
    return block.group(1)


def run_documented(tmp_path: Path, steps: str) -> list[dict]:
    """Run `steps` in a copy of the repository's deployment files, with a fresh HOME holding the
    export the docs copy from ~/Downloads; returns each compose call's resolved config."""
    host = tmp_path / "host"
    host.mkdir(parents=True)
    for path in [*ROOT.glob("docker-compose*.yml"), ROOT / ".env.example", ROOT / "Dockerfile"]:
        shutil.copy(path, host / path.name)
    (tmp_path / "Downloads").mkdir()
    (tmp_path / "Downloads" / "twitter-2024-03-11-abc.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DANN_", "COMPOSE_"))} | {"HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", SHIM + steps], cwd=host, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    configs = [yaml.safe_load(p.read_text()) for p in sorted(host.glob("compose-*.yml"))]
    assert configs, "the steps never ran docker compose"
    return configs


@needs_compose
def test_the_readmes_deployment_steps_reach_a_valid_stack(tmp_path):
    config = run_documented(tmp_path, bash_block(ROOT / "README.md", "## Deployment"))[0]
    services = config["services"]
    assert {"trainer", "bot", "web"} <= set(services)
    assert services["trainer"]["environment"]["DANN_EXPORT_PATH"] == "/data/export/twitter-2024-03-11-abc.zip"
    assert (tmp_path / "host" / "bot.env").stat().st_mode & 0o777 == 0o600


@needs_compose
def test_the_two_machine_steps_give_a_trainer_and_a_serving_host_sharing_the_bucket_and_database(tmp_path):
    doc = ROOT / "docs" / "deployment.md"
    serving = run_documented(tmp_path / "serving", bash_block(doc, "**Serving host**"))[0]["services"]
    trainer = run_documented(tmp_path / "gpu", bash_block(doc, "**GPU host**"))[0]["services"]

    assert set(trainer) == {"trainer"} and gpus(trainer["trainer"]) == [GPU]
    assert {"bot", "web", "postgres", "redis"} <= set(serving)
    bucket = "s3://my-dann-models/voice"
    for name, service in [("trainer", trainer["trainer"])] + [(n, serving[n]) for n in ("bot", "web", "poster")]:
        env = service["environment"]
        assert env["DANN_CHECKPOINT_DIR"] == bucket and env["DANN_CHECKPOINT_CACHE"] == "/data/cache", name
        assert env["DANN_DATABASE_URL"].startswith("postgresql://dann:"), name
        assert not any("checkpoints" in v or "state:" in v for v in service.get("volumes", [])), name
    assert trainer["trainer"]["environment"]["DANN_DATABASE_URL"].endswith("@10.0.0.2:5432/dann")
    password = serving["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert len(password) == 32 and serving["web"]["environment"]["DANN_DATABASE_URL"] == \
        f"postgresql://dann:{password}@postgres:5432/dann"
    assert serving["postgres"]["ports"] == ["10.0.0.2:5432:5432/tcp"]  # the private address, never 0.0.0.0
    assert serving["web"]["environment"]["DANN_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    assert serving["web"]["ports"] == ["127.0.0.1:8000:8000/tcp"]
    for name in ("bot", "web", "poster"):
        assert gpus(serving[name]) == [] and serving[name]["environment"]["JAX_PLATFORMS"] == "cpu"
    assert "DANN_DISCORD_TOKEN" not in serving["bot"]["environment"] or serving["bot"]["environment"]["DANN_DISCORD_TOKEN"]
    assert serving["web"]["environment"]["DANN_DISCORD_TOKEN"] == ""
    assert not any("export" in v for n in ("bot", "web", "poster") for v in serving[n].get("volumes", []))


# --- the healthchecks, run for real -------------------------------------------------------------

def healthcheck(service: str, compose: str = "docker-compose.yml") -> list[str]:
    """The service's healthcheck command from a compose file, with this venv's python."""
    command = yaml.safe_load((ROOT / compose).read_text())["services"][service]["healthcheck"]["test"]
    assert command[:2] == ["CMD", "python"]
    return [sys.executable, *command[2:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(command, env, process, seconds=60) -> None:
    deadline = time.monotonic() + seconds
    while subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "never became healthy"
        time.sleep(0.5)


@pytest.fixture
def dann_process():
    """Start `dann ...` with DANN_ settings; stopped with SIGTERM at the end of the test."""
    started = []

    def start(args, **settings):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DANN_")}
        env.update({"JAX_PLATFORMS": "cpu", **{f"DANN_{k.upper()}": str(v) for k, v in settings.items()}})
        process = subprocess.Popen([sys.executable, "-m", "dann.cli", *args], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process, env

    yield start
    for process in started:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_the_web_healthcheck_passes_once_the_page_answers(dann_process, tmp_path):
    port = free_port()
    command = healthcheck("web")
    env = {**os.environ, "DANN_WEB_PORT": str(port)}
    assert subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0  # nothing listens yet
    process, env = dann_process(["web"], web_port=port, checkpoint_dir=tmp_path / "ckpt")
    wait_until_healthy(command, env, process)  # with no model yet: healthy means answering, not ready


@pytest.mark.slow
@pytest.mark.parametrize("compose", ["docker-compose.yml", "docker-compose.split-trainer.yml"])
def test_the_trainer_healthcheck_follows_the_schedulers_heartbeat(dann_process, tmp_path, compose):
    export = tmp_path / "posts.txt"
    export.write_text("hello\n")
    if compose == "docker-compose.yml":
        checkpoints, settings = tmp_path / "ckpt", {"checkpoint_dir": tmp_path / "ckpt"}
    else:  # a bucket: the trainer works in its mirror (no run here, so the bucket is never reached)
        checkpoints = tmp_path / "cache" / "voice" / "dann"
        settings = {"checkpoint_dir": "s3://voice/dann", "checkpoint_cache": tmp_path / "cache"}
    process, env = dann_process(["trainer"], export_path=export, train_cron="0 3 1 1 *",  # no run: only the heartbeat
                                **settings)
    command = healthcheck("trainer", compose)
    wait_until_healthy(command, env, process)
    heartbeat = checkpoints / ".trainer-heartbeat"
    old = time.time() - 181
    os.utime(heartbeat, (old, old))  # a scheduler that stopped beating 3 minutes ago
    assert subprocess.run(command, env=env, capture_output=True, check=False).returncode == 1


# --- the image's install ----------------------------------------------------------------------------

def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """A lock file as {normalised name: (version, hashes)}; an entry that is not `name==version`
    followed by hashes fails the test."""
    entries = {}
    for entry in path.read_text().replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        pin, *options = entry.split()
        requirement = Requirement(pin)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and not requirement.url, entry
        hashes = [option.removeprefix("--hash=") for option in options]
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), entry
        entries[canonicalize_name(requirement.name)] = (specifier.version, hashes)
    return entries


@pytest.mark.parametrize("variant", ["cpu", "cuda12", "cuda13"])
def test_the_image_installs_a_lock_file_with_hashes_that_agrees_with_pyproject(variant):
    """Every package the image installs is pinned with its hashes in requirements/VARIANT.lock, and
    the pins are inside pyproject's ranges: a new dependency, or a range the lock left, fails here."""
    entries = locked(ROOT / "requirements" / f"{variant}.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + (project["optional-dependencies"][variant] if variant != "cpu" else [])
    wanted += [line.split("#")[0].strip() for line in (ROOT / "requirements" / "build.in").read_text().splitlines()
               if line.split("#")[0].strip()]
    for dependency in map(Requirement, wanted):
        name = canonicalize_name(dependency.name)
        assert name in entries, f"{dependency.name} is not in requirements/{variant}.lock"
        assert dependency.specifier.contains(entries[name][0]), (dependency, entries[name][0])
        for extra in dependency.extras:  # jax[cuda12]: its plugin, at jax's own version; psycopg[binary]: its wheel
            plugin = f"jax-{extra}-plugin" if name == "jax" else f"{name}-{extra}"
            assert entries[canonicalize_name(plugin)][0] == entries[name][0]
    assert "torch" not in entries and "pytest" not in entries  # the image runs dann, not its tests


def test_the_image_installs_with_require_hashes_and_fetches_nothing_else():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    assert "pip install --require-hashes --no-deps -r requirements/${JAX_EXTRA:-cpu}.lock" in text
    own = next(line for line in text.splitlines() if "pip install --no-deps" in line and " ." in line)
    assert "--no-index" in own and "--no-build-isolation" in own  # dann itself: nothing from outside the lock
    # Every variant docker compose builds has its lock file.
    for name in ("docker-compose.yml", "docker-compose.cpu.yml"):
        for service in yaml.safe_load((ROOT / name).read_text())["services"].values():
            extra = str(service.get("build", {}).get("args", {}).get("JAX_EXTRA", ""))
            for variant in re.findall(r"cuda\d+", extra) or ["cpu"]:
                assert (ROOT / "requirements" / f"{variant}.lock").is_file(), variant


def test_the_build_context_holds_every_package_and_never_the_env_file():
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*"  # an allowlist: whatever is not named stays out (.env, exports, checkpoints)
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {pattern.rstrip("*") for pattern in packages["include"]} <= allowed
    assert {"pyproject.toml", "README.md"} <= allowed and not {".env", "bot.env", "poster.env"} & allowed
