"""The playground's HTTP API, in process through httpx's ASGI transport (lifespan included where a
model is served), and `run_web` in a real subprocess."""

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.web.helpers import make_settings, one_line, request, serving
from web.app import CannotListen, create_app, run_web

REPO = Path(__file__).parents[2]


# --- generating ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_generate_speaks_with_the_served_model(trained_dir):
    async def scenario():
        app = create_app(make_settings(trained_dir))
        async with serving(app) as client:
            post = {"mode": "post", "prompt": "", "temperature": 0.05, "n": 2, "seed": 1}
            answers = [await client.post("/api/generate", json=body) for body in
                       (post, post, {**post, "mode": "reply"}, {**post, "prompt": "good", "temperature": 2.0})]
            return answers, (await client.get("/api/status")).json()

    (post, again, reply, prompted), status = asyncio.run(scenario())
    assert [r.status_code for r in (post, again, reply, prompted)] == [200] * 4
    body = post.json()
    # The tiny model learned one post and one reply by heart: the mode reaches the model.
    assert body["texts"] == ["good morning friends"] * 2
    assert reply.json()["texts"] == ["lol same"] * 2
    assert all(text.startswith("good") for text in prompted.json()["texts"])
    assert again.json()["texts"] == body["texts"]  # a seed makes it repeatable
    assert body["model_version"] == status["model"]["version"]
    assert isinstance(body["ms"], (int, float)) and body["ms"] >= 0
    assert status["ready"] is True and status["model"]["val_loss"] < 1.0 and status["model"]["trained_at"]
    # Best of 8 for each of the 8 texts asked for; this tiny model's posts are too short to copy.
    seen = status["model"]["candidates"]
    assert status["model"]["best_of"] == 8 and seen["candidates"] == 4 * 2 * 8 and seen["copies"] == 0
    assert status["model"]["copy_filter"]["words"] == 7


@pytest.mark.slow
def test_fifty_concurrent_requests_are_served_in_shared_batches(trained_dir):
    async def scenario():
        app = create_app(make_settings(trained_dir, web_rate_per_minute=1000))  # one client sends all 50
        async with serving(app) as client:
            answers = await asyncio.gather(*(
                client.post("/api/generate", json={"prompt": "good", "temperature": 0.4, "n": 1, "seed": i})
                for i in range(50)
            ))
            return answers, app.state.service

    answers, service = asyncio.run(scenario())
    assert [a.status_code for a in answers] == [200] * 50
    assert all(len(a.json()["texts"]) == 1 and a.json()["texts"][0].startswith("good") for a in answers)
    assert service.requests_served == 50
    assert service.batches < 50


def test_before_any_model_the_page_says_dann_is_still_learning(tmp_path):
    async def scenario():
        app = create_app(make_settings(tmp_path / "empty"))
        async with serving(app) as client:
            return [await client.post("/api/generate", json={"prompt": "hi"}), await client.get("/api/status"),
                    await client.get("/healthz"), await client.get("/")]

    generate, status, health, page = asyncio.run(scenario())
    assert generate.status_code == 503
    assert "still learning" in one_line(generate)
    assert int(generate.headers["Retry-After"]) > 0
    assert status.status_code == 200 and status.json()["ready"] is False and status.json()["model"] is None
    assert health.status_code == 200
    assert {k: health.json()[k] for k in ("ok", "ready", "model_version")} == {"ok": True, "ready": False,
                                                                                "model_version": None}
    assert health.json()["queue"]["pending_rows"] == 0 and "max_ms" in health.json()["loop_lag"]
    assert page.status_code == 200


# --- refusing ------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("options, status, words", [
    ({"content": b'{"mode": "post", "prompt": ', "headers": JSON}, 422, ["not valid JSON"]),
    ({"content": b'{"prompt": "hi"}', "headers": {"Content-Type": "text/plain"}}, 422,
     ["Content-Type: application/json"]),
    ({"json": ["post", "hi"]}, 422, ["JSON object"]),
    ({"json": {"temperature": 3}}, 422, ["temperature", "0.05 to 2.0", "got 3"]),
    ({"json": {"temperature": 0}}, 422, ["temperature", "0.05 to 2.0"]),
    ({"json": {"temperature": "hot"}}, 422, ["temperature", "hot"]),
    ({"json": {"n": 9}}, 422, ["n must be", "1 to 8", "got 9"]),
    ({"json": {"n": 0}}, 422, ["n must be", "1 to 8"]),
    ({"json": {"prompt": "x" * 501}}, 422, ["prompt is 501 characters", "most is 500"]),
    ({"json": {"context": "x" * 501}}, 422, ["context is 501 characters", "most is 500"]),
    ({"json": {"context": ["a", "b"]}}, 422, ["context must be text (or null)"]),
    ({"json": {"mode": "tweet"}}, 422, ["mode", "'post' or 'reply'", "tweet"]),
    ({"json": {"seed": -1}}, 422, ["seed"]),
    ({"json": {"temp": 0.5}}, 422, ["unknown field 'temp'"]),
    ({"json": {"prompt": "x" * 10_000}}, 413, ["over", "bytes"]),
    ({"json": {"prompt": "x" * 500, "context": "y" * 500}}, 503, ["still learning"]),  # both at their most fit
])
def test_bad_requests_get_a_4xx_with_one_readable_line(tmp_path, options, status, words):
    response = request(create_app(make_settings(tmp_path)), "POST", "/api/generate", **options)
    assert response.status_code == status
    detail = one_line(response)
    for word in words:
        assert word in detail, detail


def test_a_chunked_body_is_capped_without_a_content_length(tmp_path):
    async def chunks():
        for _ in range(100):
            yield b'{"prompt": "' + b"x" * 100  # never finished: the cap must stop reading first

    response = request(create_app(make_settings(tmp_path)), "POST", "/api/generate", content=chunks(), headers=JSON)
    assert response.status_code == 413


def test_a_client_over_its_rate_gets_429_with_retry_after(tmp_path):
    app = create_app(make_settings(tmp_path, web_rate_per_minute=2))

    async def scenario():
        async with serving(app, lifespan=False) as first, serving(app, lifespan=False, client=("10.0.0.2", 1)) as other:
            mine = [await first.post("/api/generate", json={}) for _ in range(3)]
            return mine, await other.post("/api/generate", json={})

    mine, other = asyncio.run(scenario())
    assert [r.status_code for r in mine] == [503, 503, 429]  # no model here, but the requests still count
    assert "too many requests" in one_line(mine[2])
    assert int(mine[2].headers["Retry-After"]) >= 1
    assert other.status_code == 503  # another client has its own budget


# --- the page, the plot --------------------------------------------------------------------------

def test_the_page_is_self_contained_and_starts_from_the_settings(tmp_path):
    app = create_app(make_settings(tmp_path, temperature=0.7, web_max_candidates=5))
    page = request(app, "GET", "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>dann</title>" in page.text
    assert re.search(r'id="temperature"[^>]*value="0.70"', page.text)
    assert re.search(r'id="n"[^>]*max="5"', page.text)
    assert "{{" not in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert links and all(link.startswith("/") and not link.startswith("//") for link in links), links  # no CDN
    for link in links:
        assert request(app, "GET", link).status_code == 200, link


class ServedWithReport:
    """A running service whose model's meta names its training report, as the trainer writes it."""

    running = True

    def status(self):
        return {"version": 3, "report": "reports/20261123-030000"}


def test_the_training_plot_is_served_when_the_trainer_drew_one(tmp_path):
    app = create_app(make_settings(tmp_path), service=ServedWithReport())
    missing = request(app, "GET", "/api/plot.png")
    assert missing.status_code == 404 and "no training plot yet" in one_line(missing)
    assert request(app, "GET", "/api/status").json()["plot"] is False

    png = b"\x89PNG\r\n\x1a\n" + b"not really a picture"
    (tmp_path / "reports" / "20261123-030000").mkdir(parents=True)
    (tmp_path / "reports" / "20261123-030000" / "loss.png").write_bytes(png)
    found = request(app, "GET", "/api/plot.png")
    assert found.status_code == 200 and found.content == png
    assert found.headers["content-type"] == "image/png"
    assert request(app, "GET", "/api/status").json()["plot"] is True


# --- run_web -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_web_refuses_a_port_in_use_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(CannotListen, match=rf"127\.0\.0\.1:{port}: .*in use"):
            run_web(make_settings(tmp_path), port=port)
        assert time.monotonic() - began < 2  # before any model loads


def test_run_web_refuses_a_port_out_of_range(tmp_path):
    with pytest.raises(CannotListen, match="127.0.0.1:70000: a port is a number from 1 to 65535"):
        run_web(make_settings(tmp_path), port=70000)


@pytest.mark.slow
def test_run_web_serves_until_interrupted(tmp_path):
    port = free_port()
    code = ("import sys; from dann.settings import Settings; from web.app import run_web; "
            "run_web(Settings(checkpoint_dir=sys.argv[1]), port=int(sys.argv[2]))")
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(port)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the server did not answer within a minute"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health.json()["ready"] is False
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0  # Ctrl-C is how a server stops, not an error
        log = process.stdout.read()
        assert "Application shutdown complete" in log, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
