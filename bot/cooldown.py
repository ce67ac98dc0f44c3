"""Flood control: how often one person, one channel, one server and everyone together may make
dann speak, and how often it says so.

One Cooldown covers every way of asking (a mention, a DM, /dann post, /dann reply), so switching
from mentions to slash commands does not dodge it. A request is let through only when
- the person has no reply in flight (one at a time: a second mention while dann is thinking waits),
- the person's and the channel's waits are over,
- the server has had fewer than `server_per_minute` generations in the last minute, and all
  servers together fewer than `global_per_minute` (the `limits` library's moving windows);
and only a request that is let through starts new waits: asking again while waiting does not
push the wait further out.

Notices ("give me 5 s") are rationed too: at most one per person per wait, and one per channel per
wait, so fifty people mentioning dann at once in one channel get one notice, not fifty.
"""

import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

IN_FLIGHT_WAIT_S = 1.0  # what to tell someone whose previous reply is still being written


class Cooldown:
    def __init__(self, user_s: float, channel_s: float, *, server_per_minute: int = 20, global_per_minute: int = 60,
                 clock=time.monotonic):
        self.user_s = user_s
        self.channel_s = channel_s
        self.clock = clock
        self._user_until: dict[int, float] = {}
        self._channel_until: dict[int, float] = {}
        self._noticed_until: dict[tuple[str, int], float] = {}
        self._in_flight: set[int] = set()
        self._per_server = RateLimitItemPerMinute(server_per_minute)
        self._everywhere = RateLimitItemPerMinute(global_per_minute)
        self._caps = MovingWindowRateLimiter(MemoryStorage())

    def try_acquire(self, user_id: int, channel_id: int, guild_id: int | None = None) -> float:
        """0.0 if this user may have a generation in this channel now (and start its waits, and
        mark the user's reply in flight until `release`); otherwise the seconds until they may."""
        if user_id in self._in_flight:
            return IN_FLIGHT_WAIT_S
        now = self.clock()
        wait = max(self._user_until.get(user_id, 0.0), self._channel_until.get(channel_id, 0.0)) - now
        if wait > 0:
            return wait
        caps = [(self._everywhere, "*")] + ([(self._per_server, str(guild_id))] if guild_id is not None else [])
        for item, key in caps:
            if not self._caps.test(item, key):
                return max(1.0, self._caps.get_window_stats(item, key).reset_time - time.time())
        for item, key in caps:
            self._caps.hit(item, key)
        if len(self._user_until) + len(self._channel_until) > 4096:  # a busy bot must not grow without end
            self._forget_before(now)
        self._user_until[user_id] = now + self.user_s
        self._channel_until[channel_id] = now + self.channel_s
        self._in_flight.add(user_id)
        return 0.0

    def release(self, user_id: int) -> None:
        """The user's reply has been sent (or has failed): they may ask again once their wait is over."""
        self._in_flight.discard(user_id)

    def should_notice(self, user_id: int, channel_id: int, wait: float) -> bool:
        """Whether to tell this user, in this channel, about a wait of `wait` seconds: once per wait
        for the person and once per wait for the channel, so that the notices cannot become the
        spam the cooldown is there to stop."""
        now = self.clock()
        keys = [("user", user_id), ("channel", channel_id)]
        if any(self._noticed_until.get(key, 0.0) > now for key in keys):
            return False
        for key in keys:
            self._noticed_until[key] = now + wait
        return True

    def _forget_before(self, now: float) -> None:
        for table in (self._user_until, self._channel_until, self._noticed_until):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]
