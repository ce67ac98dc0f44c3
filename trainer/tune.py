"""`dann tune`: try a small set of configs around the current one on a short budget each, and write
the best for the trainer to use.

Each architecture (hidden size, layers, dropout, sequence length) trains as a population of
same-shaped models with different learning rates, vmapped into one compiled step: the members
share every batch and every matmul launch, so three learning rates cost far less than three runs
(see the README for the measured speed-up). All architectures get the same wall-clock budget, and
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
from trainer.train import TrainConfig, evaluate, learning_rate, make_optimizer, prepare_data, step_fn

log = logging.getLogger("dann.tune")

LR_FACTORS = (0.5, 1.0, 2.0)  # one population: the current learning rate, half and twice it


def neighbours(model: dict, train: TrainConfig) -> list[tuple[dict, TrainConfig]]:
    """The current architecture first, then one change at a time: a small set, not a grid."""
    hidden = model.get("hidden", ModelConfig.hidden)
    layers = model.get("layers", ModelConfig.layers)
    dropout = model.get("dropout", ModelConfig.dropout)
    trials = [
        (model, train),
        ({**model, "hidden": max(64, hidden // 2)}, train),
        ({**model, "hidden": hidden * 2}, train),
        ({**model, "layers": layers + 1 if layers < 2 else layers - 1}, train),
        ({**model, "dropout": 0.1 if dropout == 0 else 0.0}, train),
        (model, dataclasses.replace(train, seq_len=train.seq_len * 2)),
    ]
    return trials


@partial(jax.jit, static_argnames=("graphdef", "tx", "batch", "seq"), donate_argnums=(2, 3))
def population_step(graphdef, tx, params, opt_state, carry, data, starts, key, step, lrs, *, batch, seq):
    """One optimizer step for every member. params and opt_state have a leading member axis; lrs is
    (members,). Every member sees the same batch, so their losses differ by learning rate alone."""

    def member(params, opt_state, lr):
        params, opt_state, _, loss, _ = step_fn(graphdef, tx, params, opt_state, carry, data, starts, key, step, lr,
                                                batch=batch, seq=seq, stateful=False)
        return params, opt_state, loss

    return jax.vmap(member)(params, opt_state, lrs)


def train_population(corpus: Corpus, model_options: dict, config: TrainConfig, lrs: list[float],
                     seconds: float) -> list[dict]:
    """Train one model per learning rate for `seconds` (compilation included) from the same start.
    Returns each member's {"learning_rate", "val_loss", "steps"}."""
    vocab, train_data, val_data = prepare_data(corpus, config)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), **model_options), rngs=nnx.Rngs(config.seed))
    graphdef, one = nnx.split(model)
    tx = make_optimizer(config)
    params = jax.tree.map(lambda p: jnp.stack([p] * len(lrs)), one)
    opt_state = jax.vmap(tx.init)(params)
    data, val = jnp.asarray(train_data), jnp.asarray(val_data)
    starts = jnp.asarray(post_starts(train_data, config.seq_len))
    carry, key = model.init_carry(config.batch_size), jax.random.key(config.seed)
    base = jnp.asarray(lrs, jnp.float32)
    began, step, losses = time.monotonic(), 0, None
    while (progress := (time.monotonic() - began) / seconds) < 1.0:
        factor = learning_rate(config, step, progress) / config.learning_rate  # the schedule, per member
        params, opt_state, losses = population_step(graphdef, tx, params, opt_state, carry, data, starts, key, step,
                                                    base * factor, batch=config.batch_size, seq=config.seq_len)
        losses.block_until_ready()  # keep the clock honest
        step += 1
    results = []
    for i, lr in enumerate(lrs):
        member = jax.tree.map(lambda p, i=i: p[i], params)
        val_loss, _ = evaluate(graphdef, member, val)
        results.append({"learning_rate": lr, "val_loss": val_loss if math.isfinite(val_loss) else math.inf,
                        "steps": step})
    return results


def tune(corpus: Corpus, minutes: float, model_options: dict, config: TrainConfig) -> dict:
    """Try `neighbours` of (model_options, config), each architecture for an equal share of
    `minutes`. Returns {"best": {...}, "current": {...}, "trials": [...], "current_is_best": bool}."""
    trials = neighbours(model_options, config)
    seconds = minutes * 60 / len(trials)
    results = []
    for model, train in trials:
        lrs = [train.learning_rate * f for f in LR_FACTORS]
        log.info("trying %s, seq %d, learning rates %s for %.0f s", model or "the current model",
                 train.seq_len, ", ".join(f"{lr:.2g}" for lr in lrs), seconds)
        for member in train_population(corpus, model, train, lrs, seconds):
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
