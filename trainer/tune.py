"""`dann tune`: try a small set of configs around the current one on a short budget each, and write
the best for the trainer to use.

Each architecture (hidden size, layers, dropout, sequence length) trains three learning rates
from the same start. On a GPU they train as a population of same-shaped models vmapped into one
compiled step, sharing every batch and kernel launch; on a CPU, where XLA's batched matmuls were
slower than running the members in turn, they run in turn (the README has both measurements).
All architectures get the same wall-clock budget, and
the current config is always one of the trials, so the winner is at least as good as it at that
budget, or the current config wins and `dann tune` says so.

A short budget favours small, fast models over ones that would win after a longer run; the budget
per trial is printed so that this is visible.
"""

import dataclasses
import json
import logging
import math
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from lstm.model import CharRNN, ModelConfig
from trainer.batches import post_starts
from trainer.corpus import Corpus
from trainer.train import TrainConfig, evaluate, learning_rate, make_optimizer, prepare_data, step_fn, train_step

log = logging.getLogger("dann.tune")

LR_FACTORS = (0.5, 1.0, 2.0)  # one population: the current learning rate, half and twice it
EVALS = 10  # evaluations per trial, evenly over its time; the best one counts
EVAL_SYMBOLS = 20_000  # of the validation text per evaluation, so that 10 of them stay cheap


def neighbours(model: dict, train: TrainConfig) -> list[tuple[dict, TrainConfig]]:
    """The current architecture first, then one change at a time: a small set, not a grid."""
    hidden = model.get("hidden", ModelConfig.hidden)
    layers = model.get("layers", ModelConfig.layers)
    dropout = model.get("dropout", ModelConfig.dropout)
    return [
        (model, train),
        ({**model, "hidden": max(64, hidden // 2)}, train),
        ({**model, "hidden": hidden * 2}, train),
        ({**model, "layers": layers + 1 if layers < 2 else layers - 1}, train),
        ({**model, "dropout": 0.1 if dropout == 0 else 0.0}, train),
        (model, dataclasses.replace(train, seq_len=train.seq_len * 2)),
    ]


@partial(jax.jit, static_argnames=("graphdef", "tx", "batch", "seq"), donate_argnums=(2, 3))
def population_step(graphdef, tx, params, opt_state, carry, data, starts, key, step, lrs, *, batch, seq):
    """One optimizer step for every member. params and opt_state have a leading member axis; lrs is
    (members,). Every member sees the same batch, so their losses differ by learning rate alone."""

    def member(params, opt_state, lr):
        params, opt_state, _, loss, _ = step_fn(graphdef, tx, params, opt_state, carry, data, starts, key, step, lr,
                                                batch=batch, seq=seq, stateful=False)
        return params, opt_state, loss

    return jax.vmap(member)(params, opt_state, lrs)


def train_population(prepared: tuple, model_options: dict, config: TrainConfig, lrs: list[float], seconds: float,
                     *, vmapped: bool | None = None) -> list[dict]:
    """Train one model per learning rate from the same start, for `seconds` in all (compilation
    not counted). Returns each member's {"learning_rate", "val_loss" (its best), "steps"}.

    vmapped (the default on a GPU) trains the members together in one population step; otherwise
    (the default on a CPU, where XLA's batched matmuls ran slower than the members one after
    another: see the README) each member trains alone for an equal share of the time."""
    vmapped = jax.default_backend() != "cpu" if vmapped is None else vmapped
    vocab, train_data, val_data = prepared  # prepare_data's result: the same for every trial
    model = CharRNN(ModelConfig(vocab_size=len(vocab), **model_options), rngs=nnx.Rngs(config.seed))
    graphdef, start = nnx.split(model)
    tx = make_optimizer(config)
    data, val = jnp.asarray(train_data), jnp.asarray(val_data[:EVAL_SYMBOLS])
    starts = jnp.asarray(post_starts(train_data, config.seq_len))
    carry, key = model.init_carry(config.batch_size), jax.random.key(config.seed)
    shape = {"batch": config.batch_size, "seq": config.seq_len}
    count = len(lrs) if vmapped else 1

    def val_losses(params) -> list[float]:
        """Each member's val loss (the members are stacked on axis 0 when vmapped)."""
        if not vmapped:
            return [evaluate(graphdef, params, val)[0]]
        return [evaluate(graphdef, jax.tree.map(lambda p, i=i: p[i], params), val)[0] for i in range(count)]

    def run(params, opt_state, lr, seconds, one_step) -> tuple[list[float], int]:
        """Step until `seconds` have passed, following the learning-rate schedule; `lr` scales it.
        Returns each member's best val loss over EVALS evaluations, as the trainer keeps its best
        checkpoint (on a small export the last one is long overfit), and the step count.
        The clock starts after the first step, which compiles (otherwise the member that happens
        to run first would train for less time than the others), and stops while evaluating."""
        began, step, progress, paused = None, 0, 0.0, 0.0
        best, evaluations = [math.inf] * count, 0
        while progress < 1.0:
            factor = learning_rate(config, step, progress) / config.learning_rate
            params, opt_state, loss = one_step(params, opt_state, step, lr * factor)
            loss.block_until_ready()  # keep the clock honest
            began, step = began or time.monotonic(), step + 1
            progress = (time.monotonic() - began - paused) / seconds
            if progress >= (evaluations + 1) / EVALS:
                t0 = time.monotonic()
                best = [min(b, v) for b, v in zip(best, val_losses(params), strict=True)]  # NaN never wins
                paused, evaluations = paused + time.monotonic() - t0, evaluations + 1
        return best, step

    if vmapped:
        params = jax.tree.map(lambda p: jnp.stack([p] * len(lrs)), start)
        best, steps = run(params, jax.vmap(tx.init)(params), jnp.asarray(lrs, jnp.float32), seconds,
                          lambda params, opt, step, lr: population_step(graphdef, tx, params, opt, carry, data,
                                                                        starts, key, step, lr, **shape))
        members = [(loss, steps) for loss in best]
    else:
        def one_step(params, opt, step, lr):
            fresh = model.init_carry(config.batch_size)  # train_step donates (consumes) the carry it is given
            params, opt, _, loss, _ = train_step(graphdef, tx, params, opt, fresh, data, starts, key, step, lr,
                                                 stateful=False, **shape)
            return params, opt, loss

        members = []
        for lr in lrs:
            best, steps = run(jax.tree.map(jnp.copy, start), tx.init(start), lr, seconds / len(lrs), one_step)
            members.append((best[0], steps))
    return [{"learning_rate": lr, "val_loss": loss, "steps": steps}
            for lr, (loss, steps) in zip(lrs, members, strict=True)]


def tune(corpus: Corpus, minutes: float, model_options: dict, config: TrainConfig) -> dict:
    """Try `neighbours` of (model_options, config), each architecture for an equal share of
    `minutes`. Returns {"best": {...}, "current": {...}, "trials": [...], "current_is_best": bool}."""
    trials = neighbours(model_options, config)
    seconds = minutes * 60 / len(trials)
    prepared = prepare_data(corpus, max((train for _, train in trials), key=lambda t: t.seq_len))
    results = []
    for model, train in trials:
        lrs = [train.learning_rate * f for f in LR_FACTORS]
        log.info("trying %s, seq %d, learning rates %s for %.0f s", model or "the current model",
                 train.seq_len, ", ".join(f"{lr:.2g}" for lr in lrs), seconds)
        for member in train_population(prepared, model, train, lrs, seconds):
            tried = dataclasses.replace(train, learning_rate=member["learning_rate"])
            results.append({"model": model, "train": tuned_fields(tried), "val_loss": round(member["val_loss"], 4),
                            "steps": member["steps"]})
            log.info("  lr %.2g: val loss %.4f after %d steps", member["learning_rate"], member["val_loss"],
                     member["steps"])
    current = results[LR_FACTORS.index(1.0)]  # the first architecture at the current learning rate
    best = min(results, key=lambda r: r["val_loss"])
    return {"best": best, "current": current, "trials": results, "current_is_best": best is current,
            "seconds_per_trial": round(seconds, 1)}


def tuned_fields(config: TrainConfig) -> dict:
    """Every TrainConfig field but the budget, which stays the trainer's own (DANN_TRAIN_MINUTES)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in ("minutes", "max_steps")}


def write_config(path, result: dict) -> Path:
    """The best trial as a DANN_TRAIN_CONFIG file, {"model": {...}, "train": {...}}, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(path.name + ".tmp")
    best = result["best"]
    partial_path.write_text(json.dumps({"model": best["model"], "train": best["train"]}, indent=2) + "\n")
    partial_path.replace(path)
    return path
