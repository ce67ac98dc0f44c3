"""The budgeted step loop that `dann train`, `dann tune` and `dann bench` share.

    budget = Budget(seconds=300, max_steps=None)
    for step in budget:           # 0, 1, 2, ... until the budget is spent
        ... one optimizer step, then block on its loss ...
        if budget.last or time_to_evaluate:  # (train: the last step is always evaluated)
            with budget.paused():  # (tune: evaluations do not eat a trial's seconds)
                ...

The loop body stays the caller's own: a plain loop, no callbacks. `progress` is the larger of
steps done / max_steps and seconds used / seconds, so the learning-rate schedule can follow it.
"""

import contextlib
import math
import time


class Budget:
    def __init__(self, *, seconds: float | None = None, max_steps: int | None = None, clock_after_first: bool = False,
                 clock=time.monotonic):
        """Stop after `max_steps` steps or `seconds`, whichever comes first. With `clock_after_first`,
        the clock starts once the first step is done, because it compiles: otherwise whichever
        contender happened to run first would get less time than the others."""
        self.seconds = seconds if seconds else math.inf
        self.max_steps = max_steps
        self.clock = clock
        self.clock_after_first = clock_after_first
        self.steps = 0
        self._began = None if clock_after_first else clock()
        self._paused = 0.0
        self._last = None  # what `last` answered for the current step, if it was asked

    @property
    def elapsed(self) -> float:
        """Seconds counted against the budget so far."""
        return 0.0 if self._began is None else self.clock() - self._began - self._paused

    @property
    def progress(self) -> float:
        by_steps = self.steps / self.max_steps if self.max_steps else 0.0
        return max(by_steps, self.elapsed / self.seconds)

    @property
    def spent(self) -> bool:
        return self.progress >= 1.0

    @property
    def last(self) -> bool:
        """Inside the loop, after its step: whether that step spends the budget. The loop ends after
        a step for which this said True, and never after one for which it said False, so a caller
        that evaluates on the last step cannot miss it by a clock tick."""
        by_steps = (self.steps + 1) / self.max_steps if self.max_steps else 0.0
        self._last = max(by_steps, self.elapsed / self.seconds) >= 1.0
        return self._last

    @contextlib.contextmanager
    def paused(self):
        began = self.clock()
        try:
            yield
        finally:
            if self._began is not None:  # before the clock starts there is nothing to take off it
                self._paused += self.clock() - began

    def __iter__(self):
        ending = self.spent
        while not ending:
            self._last = None
            yield self.steps
            self.steps += 1
            if self._began is None:
                self._began = self.clock()
            ending = self.spent if self._last is None else self._last
