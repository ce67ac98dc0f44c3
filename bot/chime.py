"""Chime-ins: in a channel an admin opted in (`/dann chime channel:#x chance:2%`), dann answers a
message nobody addressed to it, now and then.

Only with DANN_READ_MESSAGES=true: reading messages not meant for it needs Discord's privileged
Message Content intent. Never on a bot's message or its own, never in a reply chain already at
the depth cap, never while paused or in quiet hours, and in one channel at most once per
DANN_CHIME_GAP_S.
"""

import random
import time


class Chimes:
    def __init__(self, gap_s: float, clock=time.monotonic, chance=random.random):
        self.gap_s = gap_s
        self.clock = clock
        self.draw = chance  # a number in [0, 1): below the channel's chance means "chime in"
        self._last: dict[int, float] = {}

    def due(self, channel_id: int, chance: float) -> bool:
        """Whether to chime in on this message; a yes starts the channel's gap at once, so that
        messages arriving while the answer is written do not chime in too."""
        now = self.clock()
        last = self._last.get(channel_id)
        if last is not None and now - last < self.gap_s:
            return False
        if self.draw() >= chance:
            return False
        self._last[channel_id] = now
        return True
