"""`dann tune`: try a small set of configs around the current one on a short budget each, and write
the best for the trainer to use.

Each architecture (hidden size, layers, dropout, sequence length) trains three learning rates
from the same start. On a GPU they train as a population of same-shaped models vmapped into one
compiled step, sharing every batch and kernel launch; on a CPU, where XLA's batched matmuls were
slower than running the members in turn, they run in turn (docs/measurements.md has both).
All architectures get the same wall-clock budget, and
the current config is always one of the trials, so the winner is at least as good as it at that
budget, or the current config wins and `dann tune` says so.

A short budget favours small, fast models over ones that would win after a longer run; the budget
per trial is printed so that this is visible.
"""

import dataclasses
import logging
import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from lstm.model import CharRNN
from lstm.schema import RunConfig, tunable
from trainer.batches import post_starts
from trainer.budget import Budget
from trainer.corpus import Corpus
from trainer.data import PreparedData, prepare
from trainer.train import DEFAULT_SPEED, evaluate, learning_rate, make_optimizer, step_fn, train_step

log = logging.getLogger("dann.tune")

LR_FACTORS = (0.5, 1.0, 2.0)  # one population: the current learning rate, half and twice it
EVALS = 10  # evaluations per trial, evenly over its time; the best one counts
EVAL_SYMBOLS = 20_000  # of the validation text per evaluation, so that 10 of them stay cheap


def neighbours(config: RunConfig) -> list[tuple[dict, RunConfig]]:
    """The current config first, then one change at a time: a small set, not a grid. Each comes
    with the change that made it ({section: {field: value}}, empty for the current one)."""
    model, train = config.model, config.train
    changes = [
        {},
        {"model": {"hidden": max(64, model.hidden // 2)}},
        {"model": {"hidden": model.hidden * 2}},
        {"model": {"layers": model.layers + 1 if model.layers < 2 else model.layers - 1}},
        {"model": {"dropout": 0.1 if model.dropout == 0 else 0.0}},
        {"train": {"seq_len": train.seq_len * 2}},
    ]
    return [(change, config.with_changes("tune", change)) for change in changes]


@partial(jax.jit, static_argnames=("graphdef", "tx", "batch", "seq", "speed"), donate_argnums=(2, 3))
def population_step(graphdef, tx, params, opt_state, carry, data, starts, key, step, lrs, *, batch, seq,
                    speed=DEFAULT_SPEED):
    """One optimizer step for every member. params and opt_state have a leading member axis; lrs is
    (members,). Every member sees the same batch, so their losses differ by learning rate alone."""

    def member(params, opt_state, lr):
        params, opt_state, _, loss, _ = step_fn(graphdef, tx, params, opt_state, carry, data, starts, key, step, lr,
                                                batch=batch, seq=seq, stateful=False, speed=speed)
        return params, opt_state, loss

    return jax.vmap(member)(params, opt_state, lrs)


def train_population(data: PreparedData, run: RunConfig, lrs: list[float], seconds: float | None,
                     *, steps: int | None = None, vmapped: bool | None = None) -> list[dict]:
    """Train one model per learning rate from the same start, for `seconds` in all (compilation
    not counted), or `steps` steps each, whichever ends first. Returns each member's {"learning_rate", "val_loss" (its best), "steps"}.

    vmapped (the default on a GPU) trains the members together in one population step; otherwise
    (the default on a CPU, where XLA's batched matmuls ran slower than the members one after
    another: docs/measurements.md) each member trains alone for an equal share of the time."""
    vmapped = jax.default_backend() != "cpu" if vmapped is None else vmapped
    config, speed = run.train, run.speed
    model = CharRNN(run.model.config(len(data.vocab)), rngs=nnx.Rngs(config.seed))
    graphdef, start = nnx.split(model)
    tx = make_optimizer(config)
    train_data, val = jnp.asarray(data.train), jnp.asarray(data.val[:EVAL_SYMBOLS])
    starts = jnp.asarray(post_starts(data.train, config.seq_len))
    carry, key = model.init_carry(config.batch_size), jax.random.key(config.seed)
    shape = {"batch": config.batch_size, "seq": config.seq_len, "speed": speed}
    count = len(lrs) if vmapped else 1

    def val_losses(params) -> list[float]:
        """Each member's val loss (the members are stacked on axis 0 when vmapped)."""
        if not vmapped:
            return [evaluate(graphdef, params, val, speed)[0]]
        return [evaluate(graphdef, jax.tree.map(lambda p, i=i: p[i], params), val, speed)[0] for i in range(count)]

    def run(params, opt_state, lr, seconds, one_step) -> tuple[list[float], int]:
        """Step until `seconds` have passed or `steps` are done, following the learning-rate schedule; `lr` scales it.
        Returns each member's best val loss over EVALS evaluations, as the trainer keeps its best
        checkpoint (on a small export the last one is long overfit), and the step count. The
        clock starts after the first step, which compiles, and stops while evaluating."""
        budget = Budget(seconds=seconds, max_steps=steps, clock_after_first=True)
        best, evaluations = [math.inf] * count, 0
        for step in budget:
            factor = learning_rate(config, step, budget.progress) / config.learning_rate
            params, opt_state, loss = one_step(params, opt_state, step, lr * factor)
            loss.block_until_ready()  # keep the clock honest
            if budget.progress >= (evaluations + 1) / EVALS:
                with budget.paused():
                    best = [min(b, v) for b, v in zip(best, val_losses(params), strict=True)]  # NaN never wins
                evaluations += 1
        return best, budget.steps

    if vmapped:
        params = jax.tree.map(lambda p: jnp.stack([p] * len(lrs)), start)
        best, done = run(params, jax.vmap(tx.init)(params), jnp.asarray(lrs, jnp.float32), seconds,
                          lambda params, opt, step, lr: population_step(graphdef, tx, params, opt, carry,
                                                                        train_data, starts, key, step, lr, **shape))
        members = [(loss, done) for loss in best]
    else:
        def one_step(params, opt, step, lr):
            fresh = model.init_carry(config.batch_size)  # train_step donates (consumes) the carry it is given
            params, opt, _, loss, _ = train_step(graphdef, tx, params, opt, fresh, train_data, starts, key, step, lr,
                                                 stateful=False, **shape)
            return params, opt, loss

        members = []
        for lr in lrs:
            best, done = run(jax.tree.map(jnp.copy, start), tx.init(start), lr,
                             seconds / len(lrs) if seconds else None, one_step)
            members.append((best[0], done))
    return [{"learning_rate": lr, "val_loss": loss, "steps": steps}
            for lr, (loss, steps) in zip(lrs, members, strict=True)]


def tune(corpus: Corpus, minutes: float | None, config: RunConfig, *, steps: int | None = None) -> dict:
    """Try `neighbours` of `config`, each architecture for an equal share of `minutes`, or `steps`
    steps per learning rate (a budget that does not depend on the machine), whichever ends first. Returns
    {"best", "current", "trials", "current_is_best", "seconds_per_trial"}; each trial is
    {"change", "model", "train", "val_loss", "steps"} with every model and training field but the
    budget, as trainer/config.py's `write_file` saves them."""
    trials = neighbours(config)
    seconds = minutes * 60 / len(trials) if minutes else None
    # Prepared once, for the longest sequence tried: every trial reads the same split and vocabulary.
    data = prepare(corpus, max((run.train for _, run in trials), key=lambda t: t.seq_len))
    results = []
    for change, run in trials:
        lrs = [run.train.learning_rate * f for f in LR_FACTORS]
        log.info("trying %s, seq %d, learning rates %s for %s", _describe(change), run.train.seq_len,
                 ", ".join(f"{lr:.2g}" for lr in lrs), f"{seconds:.0f} s" if seconds else f"{steps} steps each")
        for member in train_population(data, run, lrs, seconds, steps=steps):
            tried = dataclasses.replace(run.train, learning_rate=member["learning_rate"])
            results.append({"change": change, "model": dataclasses.asdict(run.model), "train": tunable(tried),
                            "val_loss": round(member["val_loss"], 4), "steps": member["steps"]})
            log.info("  lr %.2g: val loss %.4f after %d steps", member["learning_rate"], member["val_loss"],
                     member["steps"])
    current = results[LR_FACTORS.index(1.0)]  # the first architecture at the current learning rate
    best = min(results, key=lambda r: r["val_loss"])
    return {"best": best, "current": current, "trials": results, "current_is_best": best is current,
            "seconds_per_trial": round(seconds, 1) if seconds else None, "steps_per_trial": steps}


def _describe(change: dict) -> str:
    return ", ".join(f"{k} {v}" for part in change.values() for k, v in part.items()) or "the current config"

