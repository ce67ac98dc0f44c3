"""The front door for generation requests: refused cheaply when the queue is full, and let in at
a pace the event loop can keep.

Under a burst (a thousand clients at once), what blocks the event loop is not the model, which
samples on its own thread, but the per-request work of the web stack itself: validation, routing,
the queue, the response (docs/serving.md#under-load has its cost). asyncio runs every ready
callback of one loop iteration before it looks at its timers again, so a thousand requests that
arrive together become one long iteration: every other connection, and /healthz, waits.

So, for POST /api/generate and /api/game/pair:
- while the generation service's queue cannot take even one text, the request is answered 503 with
  Retry-After here, before anything parses it (the service would refuse it anyway, at full cost);
- otherwise it waits its turn: at most `per_turn` requests enter the app per loop iteration, so an
  iteration's work stays bounded however many arrive at once. Waiting costs a future, no work.
"""

import asyncio
import collections
import math

from starlette.responses import JSONResponse

PATHS = ("/api/generate", "/api/game/pair")


class FrontDoor:
    def __init__(self, app, service, per_turn: int = 8):
        self.app, self.service, self.per_turn = app, service, per_turn
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._entered = 0  # requests let in since the last turn began
        self._turning = False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS:
            return await self.app(scope, receive, send)
        service = self.service
        if service.current is not None and not service.admits(service.best_of):
            service.refused += 1
            seconds = math.ceil(service.retry_after())
            response = JSONResponse({"detail": "dann is busy: too many people are asking at once; try again in "
                                               f"{seconds} s"}, status_code=503, headers={"Retry-After": str(seconds)})
            return await response(scope, receive, send)
        await self._turn()
        await self.app(scope, receive, send)

    async def _turn(self) -> None:
        if not self._waiting and self._entered < self.per_turn:
            self._entered += 1
            self._next_turn()
            return
        ticket = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        self._next_turn()
        await ticket

    def _next_turn(self) -> None:
        if not self._turning:
            self._turning = True
            asyncio.get_running_loop().call_soon(self._release)  # runs in the next loop iteration

    def _release(self) -> None:
        self._turning = False
        self._entered = 0
        while self._waiting and self._entered < self.per_turn:
            ticket = self._waiting.popleft()
            if not ticket.done():  # a cancelled ticket's client has left
                ticket.set_result(None)
                self._entered += 1
        if self._waiting:
            self._next_turn()
