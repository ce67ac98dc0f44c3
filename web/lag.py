"""The event loop's lag: how much later than asked a sleeping task wakes up.

Everything the web process does for a request runs on one event loop; the model samples on its
own thread. If something blocks the loop (a slow parse, the GIL held too long, a compile), every
connection waits, and this is where it shows. /healthz reports it, a lag over WARN_MS is logged
as it happens, and the load test (tests/web/test_load.py, docs/serving.md) holds it to that bound.
"""

import asyncio
import collections
import logging
import time

log = logging.getLogger("dann.web")

WARN_MS = 100.0  # a page that stalls this long feels stuck; the GIL's switch interval is 5 ms


class LoopLag:
    def __init__(self, interval_s: float = 0.02, window_s: float = 60.0):
        self.interval_s = interval_s
        self.window_s = window_s
        self.max_ms = 0.0  # the worst since the process started
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (when, lag ms)

    async def run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            now = time.perf_counter()
            lag_ms = max(0.0, (now - asked - self.interval_s) * 1000)
            self.max_ms = max(self.max_ms, lag_ms)
            if lag_ms > WARN_MS:
                log.warning("the event loop was blocked for %.0f ms", lag_ms)
            self._recent.append((now, lag_ms))
            while self._recent and self._recent[0][0] < now - self.window_s:
                self._recent.popleft()

    def as_dict(self) -> dict:
        recent = [lag for _, lag in self._recent]
        return {"max_ms": round(self.max_ms, 1), "last_minute_max_ms": round(max(recent, default=0.0), 1)}
