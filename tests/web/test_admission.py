"""The web page under pressure, in process: rate limits keyed behind a proxy, a full queue
answered with 503 and Retry-After, and a client that leaves withdrawing its request."""

import asyncio
import json

import pytest

from dann.voice.request import GenerationRequest
from tests.dann.serving import Recorded, eventually, sampled
from tests.web.helpers import make_settings, one_line, serving
from web.app import create_app


async def statuses(app, forwarded: list[str | None], peer: str = "127.0.0.1") -> list[int]:
    codes = []
    async with serving(app, lifespan=False, client=(peer, 123)) as client:
        for hop in forwarded:
            headers = {"X-Forwarded-For": hop} if hop else {}
            response = await client.post("/api/generate", json={"prompt": "x" * 600}, headers=headers)
            codes.append(response.status_code)  # 422 (prompt too long) once past the rate limit
    return codes


@pytest.fixture
async def stub(tmp_path):
    service = Recorded(tmp_path, max_pending_rows=16)
    await service.start()
    service.current = object()
    yield service
    service.release.set()
    await service.stop()


async def test_with_trusted_proxies_each_forwarded_client_has_its_own_limit(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=1, web_trusted_proxies=["127.0.0.1"]), stub)
    stub.release.set()
    async with serving(app, lifespan=False) as client:
        one = await client.post("/api/generate", json={}, headers={"X-Forwarded-For": "198.51.100.1"})
        again = await client.post("/api/generate", json={}, headers={"X-Forwarded-For": "198.51.100.1"})
        other = await client.post("/api/generate", json={}, headers={"X-Forwarded-For": "198.51.100.2"})
        spoofed = await client.post("/api/generate", json={}, headers={"X-Forwarded-For": "1.1.1.1, 198.51.100.1"})
    assert [r.status_code for r in (one, again, other, spoofed)] == [200, 429, 200, 429]
    assert "too many requests" in one_line(again) and 55 <= int(again.headers["Retry-After"]) <= 60


async def test_without_trusted_proxies_a_spoofed_header_changes_nothing(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=1), stub)
    stub.release.set()
    async with serving(app, lifespan=False) as client:
        codes = [(await client.post("/api/generate", json={}, headers={"X-Forwarded-For": f"203.0.113.{i}"}))
                 .status_code for i in range(3)]
    assert codes == [200, 429, 429]


async def test_two_ipv6_addresses_in_one_64_share_a_bucket(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=1), stub)
    stub.release.set()
    codes = []
    for peer in ("2001:db8:5:6::1", "2001:db8:5:6:abcd::99", "2001:db8:5:7::1"):
        async with serving(app, lifespan=False, client=(peer, 123)) as client:
            codes.append((await client.post("/api/generate", json={})).status_code)
    assert codes == [200, 429, 200]


async def test_the_global_cap_holds_whoever_asks(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_global_per_minute=3), stub)
    stub.release.set()
    codes = []
    for i in range(5):
        async with serving(app, lifespan=False, client=(f"192.0.2.{i}", 123)) as client:
            codes.append((await client.post("/api/generate", json={})).status_code)
    assert codes == [200, 200, 200, 429, 429]


async def test_a_full_queue_is_a_503_with_retry_after(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=100), stub)
    stub.release.clear()  # nothing is answered, so the queue fills: 16 rows are two requests
    async with serving(app, lifespan=False) as client:
        waiting = [asyncio.create_task(client.post("/api/generate", json={"prompt": "p0"}))]
        await eventually(lambda: stub.calls)  # p0 is being sampled (held); two more fill the 16 rows
        waiting += [asyncio.create_task(client.post("/api/generate", json={"prompt": f"p{i}"})) for i in (1, 2)]
        await eventually(lambda: stub.load()["pending_rows"] == 16)
        refused = await client.post("/api/generate", json={})
        assert refused.status_code == 503 and "busy" in one_line(refused)
        assert int(refused.headers["Retry-After"]) >= 1
        stub.release.set()
        answered = await asyncio.gather(*waiting)
    assert sorted(r.status_code for r in answered) == [200, 200, 200]


async def test_a_client_that_leaves_has_its_request_withdrawn_before_sampling(tmp_path, stub):
    app = create_app(make_settings(tmp_path), stub)
    stub.release.clear()
    # A raw ASGI call whose client disconnects 0.2 s after sending its body.
    body = json.dumps({"prompt": "gone"}).encode()
    messages = asyncio.Queue()
    await messages.put({"type": "http.request", "body": body, "more_body": False})
    sent = []

    async def receive():
        return await messages.get()

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/generate", "raw_path": b"/api/generate", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json"), (b"host", b"dann.test")],
             "client": ("127.0.0.1", 5), "server": ("dann.test", 80)}
    blocker = asyncio.create_task(stub.generate(GenerationRequest("post", "blocker"), client="other"))
    await eventually(lambda: stub.calls)  # the blocker's call is running (and held): "gone" must wait
    call = asyncio.create_task(app(scope, receive, send))
    await eventually(lambda: stub.load()["pending_rows"] == 8)
    await messages.put({"type": "http.disconnect"})
    await asyncio.wait_for(call, 5)
    assert stub.load()["pending_rows"] == 0 and stub.load()["withdrawn"] == 1
    stub.release.set()
    await blocker
    await asyncio.sleep(0.1)
    assert sampled(stub) == ["blocker"]  # "gone" was never sampled
    assert sent[0]["status"] == 499


async def test_a_prompt_holding_a_blocked_term_is_a_422_and_never_sampled(tmp_path):
    from dann.voice.blocklist import Blocklist
    from dann.voice.filters import Filters

    service = Recorded(tmp_path, filters=Filters(Blocklist(["dishwasher"])))
    await service.start()
    service.current = object()
    try:
        app = create_app(make_settings(tmp_path), service)
        async with serving(app, lifespan=False) as client:
            refused = await client.post("/api/generate", json={"prompt": "dishwasherndd"})
            fine = await client.post("/api/generate", json={"prompt": "the dishes"})
    finally:
        await service.stop()
    assert refused.status_code == 422 and one_line(refused) == "the prompt holds a blocked term; dann will not say it"
    assert fine.status_code == 200 and sampled(service) == ["the dishes"]


async def test_the_owners_pause_is_a_503_on_the_web_while_it_lasts(tmp_path, stub):
    from dann.state import store_beside
    from dann.state.pause import Control

    app = create_app(make_settings(tmp_path), stub)
    owner = Control(store_beside(tmp_path))  # as /dann pause writes it, from the bot's process
    async with serving(app, lifespan=False) as client:
        owner.pause(None, None)
        paused = await client.post("/api/generate", json={"prompt": "hi"})
        owner.resume(None)
        resumed = await client.post("/api/generate", json={"prompt": "again"})
    assert paused.status_code == 503 and one_line(paused) == "dann is paused by its owner for now"
    assert int(paused.headers["Retry-After"]) >= 1
    assert resumed.status_code == 200 and sampled(stub) == ["again"]


async def test_a_store_that_cannot_be_read_is_a_503_that_names_no_path(tmp_path, caplog):
    from sqlalchemy import create_engine

    from dann.state import store_beside
    from dann.voice.filters import Filters
    from dann.voice.forget import ForgetList

    store = store_beside(tmp_path / "state")
    service = Recorded(tmp_path, filters=Filters(forget=ForgetList(store)))
    await service.start()
    service.current = object()
    store.engine = create_engine("sqlite:////sys/gone/state.db")  # the volume went away under it
    try:
        app = create_app(make_settings(tmp_path), service)
        async with serving(app, lifespan=False) as client:
            failed = await client.post("/api/generate", json={"prompt": "hi"})
    finally:
        await service.stop()
    assert failed.status_code == 503 and "/" not in one_line(failed)
    assert one_line(failed) == "dann cannot reach its state database right now; its operator's log says why"
    assert any(store.where in r.getMessage() for r in caplog.records)  # the detail is in the log


async def test_every_response_carries_the_security_headers(tmp_path, stub):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=1), stub)
    async with serving(app, lifespan=False) as client:
        answers = [await client.get("/"), await client.get("/static/nope.css"),
                   await client.post("/api/generate", json={"prompt": "a"}),
                   await client.post("/api/generate", json={"prompt": "b"}),  # 429, past the rate
                   await client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})]
    assert [a.status_code for a in answers] == [200, 404, 200, 429, 422]
    for answer in answers:
        assert "default-src 'self'" in answer.headers["content-security-policy"], answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["referrer-policy"] == "no-referrer"


def test_the_cookie_is_secure_when_the_request_came_over_https():
    from web.rate_limit import networks, over_https

    proxies = networks(["127.0.0.1"])
    assert over_https("https", "198.51.100.7", None, proxies)
    assert over_https("http", "127.0.0.1", "https", proxies)  # the trusted proxy says so
    assert not over_https("http", "198.51.100.7", "https", proxies)  # anyone else may not
    assert not over_https("http", "127.0.0.1", "http", proxies) and not over_https("http", "127.0.0.1", None, [])
