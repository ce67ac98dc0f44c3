"""Slow and idle connections are closed: uvicorn's HTTP/1.1 protocol with a deadline for headers.

uvicorn closes a connection idle *between* requests (timeout_keep_alive) and caps connections
(limit_concurrency), but it waits as long as a client likes for a request's headers: a client that
sends one byte a second (slowloris) holds its connection, and a few hundred of them hold them all.
This protocol gives each request `header_timeout_s` from the moment the connection opens, or the
previous response ends, until its headers are complete; then the connection is closed. The body's
deadline is the BodyLimit middleware's (web/body_limit.py), which sees the body arrive.

It subclasses uvicorn's h11 protocol rather than replace the server, so everything else (keep-alive,
pipelining, graceful shutdown) stays uvicorn's; tests/web/test_connections.py runs it against a real
socket, so an uvicorn upgrade that moves what it relies on fails there.
"""

import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("dann.web")


def with_header_deadline(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class, with this header deadline (pass it as Config(http=...))."""
    # A class per server, so that each server's connections share one sweep.
    return type("HeaderDeadlineProtocol", (HeaderDeadline,), {"header_timeout_s": header_timeout_s, "sweep": None})


class HeaderDeadline(H11Protocol):
    header_timeout_s = 5.0
    sweep: "Sweep | None" = None
    _since: float | None = None  # when it began waiting for a request's headers; None: not waiting
    _armed_for = None  # the request cycle that was current then

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self._since is not None and self.cycle is not self._armed_for:
            self._disarm()  # a new request's headers are complete: its cycle has begun

    def on_response_complete(self) -> None:
        self._arm()  # before super(): a pipelined request it starts disarms it again
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._armed_for = self.cycle
        self._since = self.loop.time()
        cls = type(self)
        if cls.sweep is None or cls.sweep.loop is not self.loop:
            cls.sweep = Sweep(self.loop)
        cls.sweep.waiting.add(self)

    def _disarm(self) -> None:
        if self._since is not None:
            self._since = None
            type(self).sweep.waiting.discard(self)

    def too_slow(self, now: float) -> bool:
        return self._since is not None and now - self._since > self.header_timeout_s

    def close_slow(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.info("closing the connection from %s: no complete request headers within %g s",
                     client, self.header_timeout_s)
            self.transport.close()


class Sweep:
    """One timer per event loop that closes the connections past their header deadline, twice a
    second: a timer per connection costs more than the check itself when a thousand arrive at once."""

    every_s = 0.5

    def __init__(self, loop):
        self.loop = loop
        self.waiting: set[HeaderDeadline] = set()
        loop.call_later(self.every_s, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.waiting if c.too_slow(now)]:
            connection.close_slow()
        if not self.loop.is_closed():
            self.loop.call_later(self.every_s, self._sweep)
