import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from dann.serving.forget import ForgetList
from trainer.batches import split_records
from trainer.exports import read_corpus

FORGOTTEN = "purple umbrella"


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


@pytest.fixture
def game_dir(trained_dir, tmp_path) -> Path:
    """A private copy of the trained checkpoints, whose forget list holds FORGOTTEN."""
    directory = shutil.copytree(trained_dir, tmp_path / "checkpoints")
    ForgetList(directory).add(FORGOTTEN)
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
