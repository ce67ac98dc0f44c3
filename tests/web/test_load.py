"""1,000 concurrent requests against a real `dann web` with a tiny model: every request is answered
(200 within its deadline, or 503 with Retry-After), none hangs, the server's memory stays bounded
and its event loop is never stalled.

The same scenario runs as a benchmark, for docs/serving.md (it prints the figures):

    .venv/bin/python -m tests.web.test_load CHECKPOINT_DIR          # the real model
    .venv/bin/python -m tests.web.test_load CHECKPOINT_DIR --stub   # a sampler that only sleeps

With --stub the server is the same app and service, but each sampler call sleeps 50 ms instead of
sampling: what is left of the event loop's lag is the web stack's own cost.
"""

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import web_server

pytestmark = pytest.mark.slow  # a real server under load: not in the fast tier

CLIENTS = 1000
DEADLINE_S = 10.0
# What this test holds the loop to. The target is 100 ms; on a 2-core machine that also runs
# the load generator, the web stack alone peaks above it (docs/serving.md#under-load), so the test
# holds it to what shows a stall: the model sampling on the loop, or a compile, gives seconds.
MAX_LAG_MS = 500
SETTINGS = dict(web_rate_per_minute=100_000, web_rate_global_per_minute=100_000, web_trusted_proxies="127.0.0.1",
                request_deadline_s=DEADLINE_S, web_max_connections=2048)


def memory_kib(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE).group(1)) for key in ("VmRSS", "VmHWM")}


async def ask(port: int, client: int, n: int = 1) -> tuple[int, dict, float, dict]:
    """One POST /api/generate on its own connection, from its own forwarded address."""
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"prompt": "", "n": n}).encode()
    writer.write(b"POST /api/generate HTTP/1.1\r\nHost: dann.test\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\nX-Forwarded-For: 10.%d.%d.%d\r\nContent-Length: %d\r\n\r\n"
                 % (client >> 16 & 255, client >> 8 & 255, client & 255, len(body)) + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), DEADLINE_S + 20)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, time.perf_counter() - began, json.loads(payload or b"{}")


async def burst(port: int, count: int, first_client: int = 0):
    return await asyncio.gather(*(ask(port, first_client + i) for i in range(count)))


def run(checkpoint_dir, log_path: Path, stub: bool = False, clients: int = CLIENTS) -> dict:
    """The load scenario against a fresh server: its figures, and the responses."""
    command = [sys.executable, "-m", "tests.web.test_load", "--serve-stub"] if stub else None
    with web_server(checkpoint_dir, log_path, command, **SETTINGS) as (process, url):
        port = int(url.rsplit(":", 1)[1])
        for size in (1, 2, 4, 8, 16, 32, 32):  # compile every batch shape first (8 to 256 rows)
            asyncio.run(burst(port, size))
        warmed_log = len(log_path.read_text())
        before = memory_kib(process.pid)
        began = time.perf_counter()
        results = asyncio.run(burst(port, clients, first_client=1000))
        took = time.perf_counter() - began
        after = memory_kib(process.pid)
        health = httpx.get(url + "/healthz", timeout=5).json()
        lags = [float(m) for m in re.findall(r"event loop was blocked for (\d+) ms", log_path.read_text()[warmed_log:])]
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    return {"results": results, "answered": answered, "refused": refused, "seconds": took,
            "rss_before_mib": before["VmRSS"] / 1024, "peak_mib": after["VmHWM"] / 1024,
            "growth_mib": (after["VmHWM"] - before["VmRSS"]) / 1024, "lags_over_100_ms": lags,
            "lag_max_ms": health["loop_lag"]["last_minute_max_ms"], "queue": health["queue"]}


def report(figures: dict) -> str:
    answered, refused = figures["answered"], figures["refused"]
    slowest = max((s for _, _, s, _ in answered), default=0.0)
    return (f"{len(figures['results'])} concurrent requests in {figures['seconds']:.1f} s: {len(answered)} answered "
            f"(slowest {slowest:.2f} s), {len(refused)} refused with 503 (slowest "
            f"{max((s for _, _, s, _ in refused), default=0.0):.2f} s); server RSS {figures['rss_before_mib']:.0f} MiB "
            f"before, peak {figures['peak_mib']:.0f} MiB (+{figures['growth_mib']:.0f} MiB); event loop lag max "
            f"{figures['lag_max_ms']:.0f} ms, {len(figures['lags_over_100_ms'])} stalls over 100 ms")


def test_a_thousand_concurrent_requests_are_answered_or_refused_in_time(trained_dir, tmp_path):
    figures = run(trained_dir, tmp_path / "web.log")
    results, answered, refused = figures["results"], figures["answered"], figures["refused"]
    assert len(results) == CLIENTS and len(answered) + len(refused) == CLIENTS, sorted({r[0] for r in results})
    assert answered and refused  # 8,000 candidate rows asked for; 1,024 may wait
    assert all(int(headers["retry-after"]) >= 1 for _, headers, _, _ in refused)
    assert all("busy" in body["detail"] or "in time" in body["detail"] for *_, body in refused)
    slowest_answer = max(seconds for _, _, seconds, _ in answered)
    assert slowest_answer < DEADLINE_S + 1, slowest_answer  # the deadline, plus the client's own queueing
    assert figures["growth_mib"] < 256, figures["growth_mib"]
    assert figures["lag_max_ms"] < MAX_LAG_MS, report(figures)
    print("\n" + report(figures))


def serve_stub(checkpoint_dir: str, port: int) -> None:
    """`dann web` with the same app and service, but a sampler that sleeps instead of sampling."""
    from dann.serving import service as service_module
    from dann.settings import load_settings
    from web.app import run_web

    def sample(self, batch):
        time.sleep(0.05)
        self.batches += 1
        self.requests_served += len(batch)
        return [(["stub"] * p.request.n, self.current.version) for p in batch]

    service_module.GenerationService._sample = sample
    run_web(load_settings(checkpoint_dir=checkpoint_dir), port=port)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-stub"]:  # the server side of --stub, started by run()
        serving = argparse.ArgumentParser()
        serving.add_argument("--checkpoint-dir")
        serving.add_argument("--port", type=int)
        served = serving.parse_args(sys.argv[2:])
        serve_stub(served.checkpoint_dir, served.port)
    else:
        parser = argparse.ArgumentParser(description="the web load scenario as a benchmark")
        parser.add_argument("checkpoint_dir")
        parser.add_argument("--stub", action="store_true", help="a sampler that sleeps 50 ms a call")
        parser.add_argument("--clients", type=int, default=CLIENTS)
        args = parser.parse_args()
        with tempfile.TemporaryDirectory() as scratch:
            print(report(run(args.checkpoint_dir, Path(scratch) / "web.log", args.stub, args.clients)))
