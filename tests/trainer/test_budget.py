"""The budgeted step loop, on a clock the test moves by hand."""

from tests.conftest import Clock
from trainer.budget import Budget


def test_a_step_budget_runs_exactly_that_many_steps_and_says_which_is_last():
    budget = Budget(max_steps=3, clock=Clock())
    seen = [(step, budget.last) for step in budget]
    assert seen == [(0, False), (1, False), (2, True)]
    assert budget.steps == 3 and budget.spent


def test_a_time_budget_counts_pauses_out_and_can_start_after_the_first_step():
    clock = Clock()
    budget = Budget(seconds=10, clock=clock, clock_after_first=True)
    steps = []
    for step in budget:
        clock.now += 30 if step == 0 else 2  # the first step compiles: not counted
        with budget.paused():
            clock.now += 100  # an evaluation: not counted either
        steps.append(step)
    assert steps == [0, 1, 2, 3, 4, 5] and budget.elapsed == 10


def test_the_loop_never_ends_after_a_step_called_not_last():
    """A step that `last` called not last is followed by another, even if the clock has run out
    since: a caller that evaluates on the last step cannot miss it."""
    clock = Clock()
    budget = Budget(seconds=5, clock=clock)
    seen = []
    for _step in budget:
        clock.now += 4
        seen.append(budget.last)
        clock.now += 2  # past the budget after the check
    assert seen == [False, True]


def test_whichever_budget_ends_first_wins():
    clock = Clock()
    budget = Budget(seconds=1, max_steps=1000, clock=clock)
    for _ in budget:
        clock.now += 0.3
    assert budget.steps == 4
    assert Budget(seconds=None, max_steps=2, clock=clock).progress == 0.0
