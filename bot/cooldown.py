"""Cooldowns: how often one person, and one channel, may make dann speak.

One Cooldown covers every way of asking (a mention, a DM, /dann post, /dann reply), so switching
from mentions to slash commands does not dodge it. A request is let through only when both the
person's and the channel's waits are over, and only a request that is let through starts new ones:
asking again while waiting does not push the wait further out.
"""

import time


class Cooldown:
    def __init__(self, user_s: float, channel_s: float, clock=time.monotonic):
        self.user_s = user_s
        self.channel_s = channel_s
        self.clock = clock
        self._user_until: dict[int, float] = {}
        self._channel_until: dict[int, float] = {}
        self._noticed_until: dict[int, float] = {}

    def try_acquire(self, user_id: int, channel_id: int) -> float:
        """0.0 if this user may have a generation in this channel now (and start both waits);
        otherwise the seconds left until they may."""
        now = self.clock()
        wait = max(self._user_until.get(user_id, 0.0), self._channel_until.get(channel_id, 0.0)) - now
        if wait > 0:
            return wait
        if len(self._user_until) + len(self._channel_until) > 4096:  # a busy bot must not grow without end
            self._forget_before(now)
        self._user_until[user_id] = now + self.user_s
        self._channel_until[channel_id] = now + self.channel_s
        return 0.0

    def should_notice(self, user_id: int, wait: float) -> bool:
        """Whether to tell this user about a wait of `wait` seconds: once per wait, so that the
        notices cannot become the spam the cooldown is there to stop."""
        now = self.clock()
        if self._noticed_until.get(user_id, 0.0) > now:
            return False
        self._noticed_until[user_id] = now + wait
        return True

    def _forget_before(self, now: float) -> None:
        for table in (self._user_until, self._channel_until, self._noticed_until):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]
