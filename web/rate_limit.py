"""A per-client rate limit: a token bucket per client address.

Each client may make `per_minute` requests a minute, and may spend them in one burst; the bucket
refills smoothly, so a client that waits a little gets a little back. It lives in memory: one web
process, one limit (restarting the server forgives everyone, which is fine for a playground).
"""

import time


class RateLimiter:
    # Past this many clients, forget the ones whose buckets are full again: they owe nothing, and
    # a crawl from many addresses must not grow memory without bound.
    max_clients = 10_000

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when counted)

    def take(self, client: str) -> float:
        """Spend one of `client`'s requests. Returns 0 if it may go ahead, otherwise the seconds
        until it may (nothing is spent then)."""
        now = self.clock()
        tokens = self._tokens(client, now)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.refill_per_s
        if len(self._buckets) >= self.max_clients:
            self._forget_idle(now)
        self._buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _tokens(self, client: str, now: float) -> float:
        tokens, then = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - then) * self.refill_per_s)

    def _forget_idle(self, now: float) -> None:
        self._buckets = {c: b for c, b in self._buckets.items() if self._tokens(c, now) < self.capacity}
