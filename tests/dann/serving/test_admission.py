"""Admission control in the generation service: a bound on waiting rows, deadlines, requests
withdrawn by askers who left, and a fair queue. A stub sampler stands in for the model so that
what gets sampled, and in which call, is visible; the queue logic is the real service's."""

import asyncio
import time

import pytest

from dann.serving.service import Busy, TooLate
from dann.voice.request import GenerationRequest as R
from tests.dann.serving import Recorded, eventually, sampled


@pytest.fixture
async def stub(tmp_path):
    service = Recorded(tmp_path, max_pending_rows=64)
    await service.start()
    service.current = object()  # "a model is loaded": _sample never looks at it
    yield service
    service.release.set()
    await service.stop()


async def test_past_the_bound_requests_are_refused_at_once_with_a_retry_time(stub):
    # best_of 8: a request for one text is 8 rows, so 64 rows admit 8 such requests.
    results = await asyncio.gather(*(stub.generate(R("post", f"r{i}"), client=f"c{i}") for i in range(20)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, Busy)]
    served = [r for r in results if not isinstance(r, Exception)]
    assert len(served) == 8 and len(refused) == 12
    assert all(r.retry_after >= 1 for r in refused) and "busy" in str(refused[0])
    assert sorted(sampled(stub)) == sorted(f"r{i}" for i in range(8))
    assert stub.load()["refused"] == 12 and stub.load()["pending_rows"] == 0
    # Once the queue has drained, asking again is admitted.
    assert (await stub.generate(R("post", "again"))).texts == ["again"]


async def test_a_request_cancelled_by_its_asker_is_withdrawn_and_never_sampled(stub):
    stub.release.clear()  # the first call blocks, so the second request waits in the queue
    first = asyncio.create_task(stub.generate(R("post", "first"), client="a"))
    await eventually(lambda: stub.calls)  # the first call is running (and held)
    gone = asyncio.create_task(stub.generate(R("post", "gone", n=4), client="b"))
    await eventually(lambda: stub.load()["pending_rows"] == 32)
    gone.cancel()  # what the web page does when its client disconnects
    await eventually(lambda: stub.load()["withdrawn"] == 1)
    assert stub.load()["pending_rows"] == 0
    stub.release.set()
    await first
    await asyncio.sleep(0.1)
    assert sampled(stub) == ["first"]


async def test_a_request_past_its_deadline_fails_without_being_sampled(stub):
    stub.release.clear()
    first = asyncio.create_task(stub.generate(R("post", "first"), client="a"))
    await eventually(lambda: stub.calls)  # the first call is running (and held)
    began = time.perf_counter()
    with pytest.raises(TooLate, match="could not answer within 0.2 s"):
        await stub.generate(R("post", "late"), client="b", deadline_s=0.2)
    assert time.perf_counter() - began < 1.0  # it did not wait for the blocked call
    stub.release.set()
    await first
    await asyncio.sleep(0.1)
    assert sampled(stub) == ["first"] and stub.load()["pending_rows"] == 0


async def test_an_asker_deadline_cannot_exceed_the_services(tmp_path):
    service = Recorded(tmp_path, deadline_s=0.2)
    await service.start()
    service.current = object()
    service.release.clear()
    try:
        blocked = asyncio.create_task(service.generate(R("post", "first")))
        with pytest.raises(TooLate):
            await service.generate(R("post", "second"), deadline_s=60)
        with pytest.raises(TooLate):
            await blocked  # admitted, then sampled too slowly: the asker still hears at its deadline
    finally:
        service.release.set()
        await service.stop()


async def test_expired_requests_are_dropped_when_their_turn_comes(stub):
    """A deadline can pass while the request waits behind a slow call; the worker then fails it
    instead of sampling it, even if nobody is left waiting for its answer."""
    stub.release.clear()
    first = asyncio.create_task(stub.generate(R("post", "first"), client="a"))
    await eventually(lambda: stub.calls)  # the first call is running (and held)
    late = asyncio.create_task(stub.generate(R("post", "late"), client="b", deadline_s=0.3))
    await asyncio.sleep(0.5)
    stub.release.set()
    await first
    with pytest.raises(TooLate):
        await late
    await asyncio.sleep(0.1)
    assert sampled(stub) == ["first"]


async def test_one_clients_many_requests_do_not_starve_another(stub):
    stub.max_pending_rows = 10_000
    stub.release.clear()
    hog = [asyncio.create_task(stub.generate(R("post", f"hog{i}", n=8), client="hog")) for i in range(12)]
    await eventually(lambda: stub.calls)  # the first call (hog0) is running; the rest wait
    other = asyncio.create_task(stub.generate(R("post", "other"), client="other"))
    await asyncio.sleep(0.05)
    stub.release.set()
    await asyncio.gather(other, *hog)
    # max_batch is 32 texts: first-come-first-served would have put "other" in the fifth call.
    assert "other" in stub.calls[1], stub.calls
    assert all(sum(8 if p.startswith("hog") else 1 for p in call) <= stub.max_batch for call in stub.calls)


async def test_a_slow_queue_refuses_what_it_could_not_answer_in_time(stub):
    """Once the calls' pace says the waiting rows would not drain before the deadline, new
    requests are refused at the door rather than admitted to time out."""
    stub.max_pending_rows = 10_000
    stub.deadline_s = 2.0
    stub.call_s = 0.5
    for _ in range(2):  # a shape's first call is its compile, which does not count: the second sets the pace
        await stub.generate(R("post", "warm"))
    stub.release.clear()
    waiting = [asyncio.create_task(stub.generate(R("post", f"w{i}", n=8), client=f"c{i}")) for i in range(40)]
    await asyncio.sleep(0.05)
    refused = [t for t in waiting if t.done() and isinstance(t.exception(), Busy)]
    assert refused, "a queue of about ten calls' worth was admitted against a 2 s deadline"
    stub.release.set()
    await asyncio.gather(*waiting, return_exceptions=True)
