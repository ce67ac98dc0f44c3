import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dann.state import store_beside
from dann.voice.blocklist import Blocklist
from dann.voice.forget import ForgetList
from lstm import checkpoint
from lstm.schema import RunRecord
from tests.servers import free_port, stop
from trainer.batches import split_records
from trainer.data import prepare
from trainer.exports import read_corpus
from trainer.retrain import read_export

FORGOTTEN = "purple umbrella"
REPO = Path(__file__).parents[2]


@dataclasses.dataclass
class GameExport:
    path: Path
    shown: set[str]  # the posts the game may show: validation split, not private, not forgotten, short
    hidden: set[str]  # every other text of the export


def write_package(root: Path, guild: list[str], private: list[str]) -> Path:
    """A Discord data package: one server channel and one DM channel, their messages interleaved in
    time so that both reach into the newest 10 % (the validation split)."""
    def channel(number, meta, texts, offset):
        folder = root / "messages" / f"c{number}"
        folder.mkdir(parents=True)
        (folder / "channel.json").write_text(json.dumps({"id": str(number), **meta}))
        (folder / "messages.json").write_text(json.dumps([
            {"ID": number * 1000 + i, "Timestamp": f"2024-06-01 {(2 * i + offset) // 60:02d}:{(2 * i + offset) % 60:02d}:00",
             "Contents": text, "Attachments": ""} for i, text in enumerate(texts)]))

    channel(1111, {"type": "GUILD_TEXT", "name": "general", "guild": {"id": "9", "name": "Server"}}, guild, 0)
    channel(2222, {"type": "DM", "recipients": ["70", "22"]}, private, 1)
    (root / "messages" / "index.json").write_text(json.dumps({"1111": "general in Server", "2222": "Direct Message with sam"}))
    (root / "account").mkdir()
    (root / "account" / "user.json").write_text(json.dumps({"id": "70", "username": "voice"}))
    return root


def publish_posts(directory: Path, export: Path) -> int:
    """Publish the newest model of `directory` again, with the posts the trainer would publish for
    `export` read with DMs, as DANN_INCLUDE_DMS=true trains: through trainer/data.py's
    `post_index`, with the directory's forget list and the default blocklist. Returns the version."""
    served = checkpoint.load_latest(directory)
    corpus = read_export(export, ForgetList(store_beside(directory)), include_dms=True)
    data = prepare(corpus, RunRecord.of(served).config.train, vocab=served.vocab, blocklist=Blocklist.default())
    version = checkpoint.next_version(directory)
    checkpoint.save(directory, version, served.model, served.vocab, served.info, copy_index=served.copy_index,
                    lexicon=served.lexicon, ngram=served.ngram, posts=data.post_index)
    return version


@pytest.fixture
def game_dir(trained_dir, game_export, tmp_path) -> Path:
    """A private copy of the trained checkpoints whose forget list holds FORGOTTEN, and whose newest
    version was published with the game export's showable posts."""
    directory = shutil.copytree(trained_dir, tmp_path / "checkpoints")
    ForgetList(store_beside(directory)).add(FORGOTTEN)
    publish_posts(directory, game_export.path)
    return directory


@pytest.fixture
def game_export(tmp_path) -> GameExport:
    """A package whose newest tenth holds server posts, DMs, a forgotten phrase and a long post."""
    guild = [f"server post {i:02d} about tea" for i in range(100)]
    guild[98] = f"server post 98 with a {FORGOTTEN}"
    guild[99] = "server post 99 " + "and on " * 12  # longer than the tests' 60-character cap
    private = [f"secret dm {i:02d} for sam" for i in range(100)]
    path = write_package(tmp_path / "package", guild, private)
    everything = read_corpus(path, include_dms=True).records
    _, val = split_records(everything, 0.1)
    shown = {r.text for r in val if r.text.startswith("server") and FORGOTTEN not in r.text and len(r.text) <= 60}
    assert len(shown) >= 3 and any(r.text.startswith("secret") for r in val)  # the test means something
    return GameExport(path, shown, {r.text for r in everything} - shown)


@contextlib.contextmanager
def web_server(checkpoint_dir, log_path: Path, command: list[str] | None = None, **env):
    """A real `dann web` on a free port, in its own process: (process, base url). `env` are DANN_*
    settings (without the prefix); its log goes to `log_path`. `command` replaces `dann web` with
    another server taking --checkpoint-dir and --port."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DANN_")}
    environment.update({"DANN_" + k.upper(): str(v) for k, v in env.items()})
    # The run's compilation cache (tests/conftest.py): a server loads what earlier processes compiled.
    environment.setdefault("DANN_JAX_CACHE_DIR", os.environ.get("DANN_JAX_CACHE_DIR", "off"))
    with log_path.open("w") as log:
        process = subprocess.Popen([*(command or [sys.executable, "-m", "dann.cli", "web"]),
                                    "--checkpoint-dir", str(checkpoint_dir), "--port", str(port)],
                                   cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the server did not answer within two minutes"
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield process, url
    finally:
        stop(process)
