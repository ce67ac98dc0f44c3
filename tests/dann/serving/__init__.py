"""Helpers shared by the service, bot and web tests: publishing checkpoint versions the way the trainer does,
waiting for the service to notice them, and a service whose stub sampler records what it was asked."""

import asyncio
import dataclasses
import shutil
import threading
import time

from dann.serving.service import GenerationService
from lstm import checkpoint
from lstm.schema import RunRecord
from lstm.vocab import Vocab

MAX_CHARS = 40  # one max_chars for every service in these tests, so the sampler compiles once per batch size


def serving_copy(trained_dir, tmp_path):
    """A private copy of the shared trained checkpoint directory, free to publish new versions into."""
    return shutil.copytree(trained_dir, tmp_path / "serving")


def publish(source_dir, directory, version: int, *, shout: bool = False, val_loss: float = 0.5,
            copy_index: bool = True) -> None:
    """Write `version` into `directory`: the model of `source_dir`, with new training facts. With
    `shout`, its vocabulary maps the same ids to upper-case letters, so its texts are recognisably
    the new version's ("lol same" becomes "LOL SAME"). Without `copy_index`, it is saved as
    versions were before the copy filter."""
    source = checkpoint.load_latest(source_dir)
    vocab = Vocab(chars=tuple(c.upper() for c in source.vocab.chars)) if shout else source.vocab
    record = dataclasses.replace(RunRecord.of(source), val_loss=val_loss, trained_at="2026-11-23T12:00:00+00:00")
    checkpoint.save(directory, version, source.model, vocab, record.to_json(),
                    copy_index=source.copy_index if copy_index else None)


def publish_damaged(directory, version: int) -> None:
    """A complete-looking `version` that cannot load, as after a bad disk or a hand edit: a copy of
    version 1 with garbage meta."""
    shutil.copytree(directory / "1", directory / str(version))
    (directory / str(version) / "meta" / "metadata").write_text("{ not json")


async def eventually(condition, timeout_s: float = 60.0) -> None:
    """Wait until condition() holds (the service polls in the background), or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


class Recorded(GenerationService):
    """The real service with a sampler that records each call's prompts (and can be slowed)."""

    def __init__(self, directory, **options):
        super().__init__(directory, poll_s=3600, **options)
        self.calls: list[list[str]] = []
        self.call_s = 0.0
        self.release = threading.Event()
        self.release.set()

    def _sample(self, batch):
        self.calls.append([p.request.prompt for p in batch])
        self.release.wait(10)
        time.sleep(self.call_s)
        return [([p.request.prompt] * p.request.n, 1) for p in batch]


def sampled(service) -> list[str]:
    return [prompt for call in service.calls for prompt in call]
