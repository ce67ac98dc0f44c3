"""The generation service on a tiny trained model: readiness, hot reload, failed loads, shared
batches, and an event loop that keeps running while the model samples."""

import asyncio
import logging
import shutil
import time

import pytest

from dann.serving import service as service_module
from dann.serving.service import GenerationService, NotReady
from dann.voice.request import GenerationRequest as R
from dann.voice.request import RequestError
from tests.dann.serving import MAX_CHARS, eventually, publish, publish_damaged


@pytest.fixture
def serving(service):
    """The shared fixture (tests/conftest.py): a running service polling every 50 ms."""
    return service


async def test_not_ready_before_any_model_then_serves_the_first_one(trained_dir, tmp_path):
    directory = tmp_path / "empty"
    service = GenerationService(directory, max_chars=MAX_CHARS, poll_s=0.05)
    await service.start()
    try:
        assert service.status() is None
        with pytest.raises(NotReady, match="still learning"):
            await service.generate(R("reply"))
        publish(trained_dir, directory, 1)
        await eventually(lambda: service.current is not None)
        answer = await service.generate(R("reply", temperature=0.05))
        assert answer.texts == ["lol same"] and answer.model_version == 1
        assert service.status()["candidates"]["candidates"] == service.best_of == 8
    finally:
        await service.stop()


async def test_a_new_version_is_picked_up_while_serving(serving, trained_dir):
    assert (await serving.generate(R("reply", temperature=0.05))).texts == ["lol same"]
    served_during_reload = []

    async def keep_asking():
        while True:
            answer = await serving.generate(R("reply", temperature=0.05))
            served_during_reload.append((answer.model_version, answer.texts[0]))

    asker = asyncio.create_task(keep_asking())
    await eventually(lambda: served_during_reload)
    publish(trained_dir, serving.checkpoint_dir, 2, shout=True, val_loss=0.25)
    await eventually(lambda: serving.current.version == 2)
    answer = await serving.generate(R("reply", temperature=0.05))
    assert not asker.done(), asker.exception()  # no request failed during the swap
    asker.cancel()

    assert (answer.model_version, answer.texts) == (2, ["LOL SAME"])
    assert serving.status()["version"] == 2 and serving.status()["val_loss"] == 0.25
    # Requests kept being answered through the swap, each wholly by one version or the other.
    assert set(served_during_reload) <= {(1, "lol same"), (2, "LOL SAME")}


async def test_a_version_that_fails_to_load_keeps_the_current_model(serving, trained_dir, caplog):
    caplog.set_level(logging.WARNING, logger="dann.service")
    publish_damaged(serving.checkpoint_dir, 2)
    await asyncio.sleep(0.5)  # ten polls

    answer = await serving.generate(R("reply", temperature=0.05))
    assert (answer.model_version, answer.texts) == (1, ["lol same"])
    failures = [r.getMessage() for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failures) == 1, failures  # said once, not at every poll
    assert "version 2" in failures[0] and "still serving version 1" in failures[0]

    publish(trained_dir, serving.checkpoint_dir, 3, shout=True)  # a broken version does not block newer ones
    await eventually(lambda: serving.current.version == 3)
    assert (await serving.generate(R("reply", temperature=0.05))).texts == ["LOL SAME"]


async def test_a_version_without_a_copy_index_is_refused_like_one_that_cannot_load(serving, trained_dir, caplog):
    caplog.set_level(logging.WARNING, logger="dann.service")
    publish(trained_dir, serving.checkpoint_dir, 2, shout=True, copy_index=False)
    await eventually(lambda: any("has no copy index" in r.getMessage() for r in caplog.records))
    answer = await serving.generate(R("reply", temperature=0.05))
    assert (answer.model_version, answer.texts) == (1, ["lol same"])  # version 2 is never served


async def test_a_version_that_failed_to_load_is_tried_again_with_backoff(serving, trained_dir, caplog, monkeypatch):
    """A failure may pass (a disk that was full, a copy still arriving): the version is retried,
    each time after a longer wait, and served once it loads."""
    monkeypatch.setattr(service_module, "RETRY_FIRST_S", 0.2)
    caplog.set_level(logging.WARNING, logger="dann.service")
    publish_damaged(serving.checkpoint_dir, 2)
    await asyncio.sleep(1.0)  # 20 polls: tried at 0, 0.2, 0.6 s, then not before 1.4 s
    failures = [r.getMessage() for r in caplog.records if "failed to load" in r.getMessage()]
    assert 2 <= len(failures) <= 4, failures
    assert "trying it again in 0 s" in failures[0] and "trying it again in 0 s" in failures[1]

    shutil.rmtree(serving.checkpoint_dir / "2")
    publish(trained_dir, serving.checkpoint_dir, 2, shout=True)
    await eventually(lambda: serving.current.version == 2, timeout_s=30)
    assert (await serving.generate(R("reply", temperature=0.05))).texts == ["LOL SAME"]


@pytest.mark.slow
async def test_requests_that_arrive_together_share_one_sampler_call(serving):
    alone = await serving.generate(R("post", temperature=1.0, seed=7))
    batches, served = serving.batches, serving.requests_served

    answers = await asyncio.gather(
        serving.generate(R("post", temperature=1.0, seed=7)),
        *(serving.generate(R("reply", temperature=1.0, seed=100 + i)) for i in range(6)),
        serving.generate(R("post", temperature=0.05, n=3)),
    )

    # All eight were queued before the worker woke up, so one batch (of 10 rows, padded to 16) served them.
    assert serving.batches - batches == 1
    assert serving.requests_served - served == 8
    assert answers[0].texts == alone.texts  # batching does not change what a request gets
    assert answers[-1].texts == ["good morning friends"] * 3


@pytest.mark.slow
async def test_the_event_loop_keeps_running_while_generations_run(serving):
    gaps = []

    async def heartbeat():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def longest_gap_while(generate):
        """The longest the loop went without a heartbeat while `generate()` ran, and its duration."""
        gaps.clear()
        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.05)
        began = time.perf_counter()
        await generate()
        took = time.perf_counter() - began
        beating.cancel()
        assert took > 0.2, "generation was too quick for the lag measurement to mean anything"
        return max(gaps), took

    async def twenty(seed=0):
        answers = await asyncio.gather(*(serving.generate(R("post", temperature=1.0, seed=seed + i)) for i in range(20)))
        assert len(answers) == 20

    # 20 rows in one batch: a shape not compiled yet, so this includes compiling the sampler (seconds).
    # jax serializes the new program for its disk cache while holding the GIL (50-150 ms measured
    # here), so the bound is looser than for serving; a loop that waited on the compile would fail.
    gap, took = await longest_gap_while(twenty)
    assert gap < 0.5, f"the event loop stalled for {gap * 1000:.0f} ms while compiling and generating for {took:.1f} s"

    async def rounds():
        for r in range(1, 16):
            await twenty(100 * r)

    gap, took = await longest_gap_while(rounds)  # 15 rounds of 20 on the compiled shape
    assert gap < 0.1, f"the event loop stalled for {gap * 1000:.0f} ms while generating for {took:.1f} s"


async def test_a_bad_request_fails_alone_and_stop_fails_whoever_waits(serving):
    with pytest.raises(RequestError, match="mode"):
        await serving.generate(R("shout"))
    assert (await serving.generate(R("reply", temperature=0.05))).texts == ["lol same"]

    await serving.stop()
    with pytest.raises(RuntimeError, match="start"):
        await serving.generate(R("reply"))
