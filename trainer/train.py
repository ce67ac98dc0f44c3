"""The train loop: a pure loss, a jitted step, evaluation, and one plain loop with a budget.

The learning rate is an argument of the step, not baked into the optimizer, because with a time
budget we do not know the number of steps in advance: the schedule (linear warmup, then cosine
decay to `min_lr_ratio`) follows the budget's progress (trainer/budget.py).

`train` returns the run's best model, its record and every metrics row in memory; the trainer's
gate, evaluation, report and publish use those directly.
"""

import dataclasses
import functools
import json
import logging
import math
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from lstm import checkpoint
from lstm.model import CharRNN
from lstm.ngram import NGramTable
from lstm.schema import RunConfig, RunRecord, SpeedConfig, TrainConfig
from lstm.vocab import EOS, Vocab
from trainer.batches import (
    encode_records,
    post_starts,
    random_windows,
    recency_weights,
    track_count,
    track_windows,
)
from trainer.budget import Budget
from trainer.data import PreparedData, TrainingError
from trainer.mesh import batch_split, data_mesh, replicated
from trainer.mixture import Scores, mix

log = logging.getLogger("dann.train")

# A run whose val loss has not improved in PATIENCE evaluations, and whose last PATIENCE are no
# better on average than the PATIENCE before them, has stopped learning at this learning rate: it
# cools down (the rate falls linearly to its floor over COOLDOWN of the steps so far, at least two
# evaluations' worth) and then stops. Cooling down is where a run at a high rate finds its best.
PATIENCE = 6
COOLDOWN = 0.1
DEFAULT_SPEED = SpeedConfig()


@functools.lru_cache
def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AdamW with clipping, minus the learning rate (train_step applies it). Only matrices decay.

    Cached: the optimizer is a static argument of the jitted step, and a fresh one (new closures)
    would make every train() call compile the step again."""
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.scale_by_adam(),
        optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
    )


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over the run's first `warmup_steps`, then cosine decay to `min_lr_ratio` of the
    peak as the budget's progress goes from 0 to 1: the floor comes at the end of the budget,
    whatever number of steps that is."""
    warmup = min(1.0, (step + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * warmup * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def stopped_learning(losses: list[float], stale: int) -> bool:
    """No better val loss in PATIENCE evaluations, and none better on average either (see PATIENCE)."""
    if stale < PATIENCE or len(losses) < 2 * PATIENCE:
        return False
    return np.mean(losses[-PATIENCE:]) >= np.mean(losses[-2 * PATIENCE:-PATIENCE])


def loss_fn(params, graphdef, x, y, carry, dropout_key=None, speed: SpeedConfig = DEFAULT_SPEED):
    """Mean cross-entropy in nats per character, and (new carry, accuracy)."""
    model = nnx.merge(graphdef, params)
    logits, carry = model(x, carry, dropout_key=dropout_key, unroll=speed.unroll,
                          matmul_dtype=speed.matmul_dtype)  # (B, T, V)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
    return loss, (carry, accuracy)


def step_fn(graphdef, tx, params, opt_state, carry, data, starts, key, step, lr, recency=None, *, batch, seq,
            stateful, speed: SpeedConfig = DEFAULT_SPEED, data_sharding=None):
    """One optimizer step on a batch drawn from `data` on the device. Returns the new state and
    (loss, grad_norm) as device scalars.

    With several devices, `data_sharding` (trainer/mesh.py) splits the batch rows over them: the
    batch is drawn here from the replicated corpus, so this constraint is what shards it."""
    if stateful:
        window = step % track_count(data.shape[0], batch, seq)
        x, y = track_windows(data, window, batch, seq)
        carry = jax.tree.map(lambda c: jnp.where(window == 0, 0.0, c), carry)  # a new pass starts fresh
    else:
        x, y = random_windows(data, starts, jax.random.fold_in(key, step), batch, seq, recency)
        carry = jax.tree.map(jnp.zeros_like, carry)
    if data_sharding is not None:
        x, y, carry = jax.lax.with_sharding_constraint((x, y, carry), data_sharding)  # (B, T) rows split
    dropout_key = jax.random.fold_in(jax.random.fold_in(key, step), 1)
    (loss, (carry, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, graphdef, x, y, carry, dropout_key, speed
    )
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
    carry = jax.lax.stop_gradient(carry)
    return params, opt_state, carry, loss, optax.tree.norm(grads)


train_step = jax.jit(step_fn, static_argnames=("graphdef", "tx", "batch", "seq", "stateful", "speed", "data_sharding"),
                     donate_argnums=(2, 3, 4))


@partial(jax.jit, static_argnames=("graphdef", "batch", "seq", "speed"))
def eval_step(graphdef, params, carry, data, window, *, batch, seq, speed=DEFAULT_SPEED):
    """ln p of each target of one window (B, T), whether the argmax was right (B, T), and the carry."""
    x, y = track_windows(data, window, batch, seq)
    model = nnx.merge(graphdef, params)
    logits, carry = model(x, carry, unroll=speed.unroll, matmul_dtype=speed.matmul_dtype)  # (B, T, V)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), y[..., None], axis=-1)[..., 0]
    return logp, jnp.argmax(logits, -1) == y, carry


def stream_log_probs(graphdef, params, data, speed: SpeedConfig = DEFAULT_SPEED) -> tuple[np.ndarray, np.ndarray, float]:
    """The stream read in order with the state carried across windows, as a reader of the text
    would: the positions predicted (M,), ln p of the token at each (M,), and the accuracy."""
    n = data.shape[0]
    batch = max(1, min(64, n // 512))
    seq = min(256, n // batch - 1)
    # Tracks of windows * seq + 1 tokens, the stream padded at its end to fill them, so that every
    # position but each track's first is predicted: the n-gram's loss covers them all.
    windows = -(-(-(-n // batch) - 1) // seq)
    per_track = windows * seq + 1
    padded = jnp.pad(data, (0, batch * per_track - n), constant_values=EOS)
    model = nnx.merge(graphdef, params)
    carry = model.init_carry(batch)
    logps, hits = [], []
    for w in range(windows):
        logp, hit, carry = eval_step(graphdef, params, carry, padded, w, batch=batch, seq=seq, speed=speed)
        logps.append(logp)
        hits.append(hit)
    # Row b of window w predicts positions b * per_track + w * seq + 1 ... + seq.
    positions = (np.arange(batch)[:, None, None] * per_track + np.arange(windows)[None, :, None] * seq
                 + np.arange(1, seq + 1)).reshape(-1)
    real = positions < n
    logp = np.stack([np.asarray(x) for x in logps], 1).reshape(-1)[real]  # (B, W, T) as positions
    accuracy = float(np.stack([np.asarray(x) for x in hits], 1).reshape(-1)[real].mean())
    return positions[real], logp, accuracy


def evaluate(graphdef, params, data, speed: SpeedConfig = DEFAULT_SPEED) -> tuple[float, float]:
    """Loss (nats per token) and next-token accuracy of the LSTM alone over the whole stream."""
    _, logp, accuracy = stream_log_probs(graphdef, params, data, speed)
    return float(-np.mean(logp)), accuracy


def scores(model: CharRNN, data: PreparedData, ngram: NGramTable | None, *, fit: bool, stream=None,
           speed: SpeedConfig = DEFAULT_SPEED) -> Scores:
    """The model on `data`'s validation posts, in nats per character: alone, and mixed with `ngram`
    (None: the LSTM alone) at a weight refitted here when `fit`, else at the table's own. `stream`
    is the validation stream already on the device, if it is."""
    graphdef, params = nnx.split(model)
    stream = jnp.asarray(data.val) if stream is None else stream
    positions, logp, accuracy = stream_log_probs(graphdef, params, stream, speed)
    if ngram is None:
        ngram_logp = None
    elif ngram is data.__dict__.get("ngram"):  # the run's own table, once built (never built just to compare)
        ngram_logp = data.ngram_val_log_probs  # counted once per run
    else:
        ngram_logp = ngram.log_probs(data.val)
    return mix(logp, positions, accuracy, ngram_logp, data.val_scale,
               weight=None if fit or ngram is None else ngram.weight)


def model_loss(model: CharRNN, vocab: Vocab, data: PreparedData, ngram: NGramTable | None = None) -> float:
    """A trained model's served loss on this data's validation posts, encoded in the model's own
    vocabulary, in nats per character (so a character model and a subword one compare): mixed with
    its own n-gram table at its own weight when it has one, else the LSTM alone."""
    if vocab != data.vocab:
        data = dataclasses.replace(data, vocab=vocab, val=encode_records(data.val_records, vocab))
    return scores(model, data, ngram, fit=False).served


# --- where a run starts ------------------------------------------------------------------------


@dataclasses.dataclass
class Start:
    """A model to continue training: its parameters, optimizer state and step count so far."""

    model: CharRNN
    opt_state: object
    steps: int
    version: int
    seconds: float = 0.0  # training time so far, over every run it went through


def continue_from(found: checkpoint.Checkpoint | None, data: PreparedData, config: RunConfig,
                  directory=None) -> Start | None:
    """A Start from `found` when it has this data's vocabulary and this architecture, else None
    (train from scratch). Its optimizer state is restored from `directory` when it saved one."""
    if found is None:
        return None
    if found.vocab != data.vocab or found.model.config != config.model.config(len(data.vocab)):
        log.info("checkpoint version %d has another vocabulary or architecture: training from scratch", found.version)
        return None
    tx = make_optimizer(config.train)
    opt_state = tx.init(nnx.state(found.model))
    if found.has_opt and directory is not None:  # published (serving) versions carry no optimizer state
        abstract_opt = jax.eval_shape(lambda: opt_state)
        opt_state = checkpoint.load_version(directory, found.version, abstract_opt).opt_state
    record = RunRecord.of(found)
    return Start(found.model, opt_state, record.steps, found.version, record.train_seconds)


def latest_start(directory, data: PreparedData, config: RunConfig) -> Start | None:
    """Continue from the newest version in `directory`, if it fits (see continue_from)."""
    try:
        found = checkpoint.load_latest(directory)
    except checkpoint.NoCheckpoint:
        return None
    return continue_from(found, data, config, directory)


# --- the loop ----------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    model: CharRNN  # the run's best, by validation loss
    vocab: Vocab
    record: RunRecord  # the best model's
    metrics: list[dict]  # one row per evaluation, as in metrics.jsonl
    steps: int  # at the end of the run (the best model may be from an earlier step)
    chars_per_s: int | None  # training throughput, the compiling first step left out
    version: int | None  # the last version saved into the output directory, if it saves
    ngram: NGramTable | None = None  # the n-gram served with the model, at its fitted weight

    def summary(self) -> dict:
        """What `dann train` prints as its last line: the served val loss (the mixture's, when
        there is one), the LSTM's alone and the n-gram's alone."""
        r, b = self.record, self.record.baselines
        return {"val_loss": round(r.val_loss, 4), "bpc": round(r.val_loss / math.log(2), 4),
                "lstm_val_loss": round(r.lstm_val_loss, 4), "ngram_val_loss": b.ngram_val_loss,
                "ngram_weight": None if r.ngram_weight is None else round(r.ngram_weight, 4),
                "val_acc": round(r.val_acc, 4), "unigram_val_loss": b.unigram_val_loss, "steps": self.steps,
                "chars_per_s": self.chars_per_s}


class MetricsLog:
    """The run's metrics: appended to `path` as each evaluation happens, so a long run can be
    followed with `tail -f`, and kept in memory for the report."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, row: dict) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def progress_bar(config: TrainConfig, enabled: bool) -> tqdm:
    """Steps when the budget is a step count, else seconds."""
    if config.max_steps:
        return tqdm(total=config.max_steps, unit="step", disable=not enabled)
    return tqdm(total=round(config.budget_s), unit="step", disable=not enabled,
                bar_format="{l_bar}{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]")


def check_losses(step: int, train_loss: float, val_loss: float, first_train_loss: float) -> None:
    if not (math.isfinite(val_loss) and math.isfinite(train_loss)):
        raise TrainingError(f"the loss became NaN or infinite by step {step}; no checkpoint was written for it")
    if train_loss > first_train_loss + 1.0:
        raise TrainingError(
            f"training diverged at step {step} (train loss {train_loss:.2f}, first was "
            f"{first_train_loss:.2f}); lower the learning rate. No checkpoint was written for it"
        )


def train(data: PreparedData, config: RunConfig, out_dir, *, start: Start | None = None, save: bool = True,
          progress: bool = True) -> TrainResult:
    """Train on `data`, continuing from `start` if given. Appends the metrics to
    `out_dir/metrics.jsonl`; with `save`, also writes each improvement to `out_dir` as a new
    version, so the newest version there is always the best model so far (with its optimizer
    state, to resume from). Returns the best model of the run in memory."""
    cfg, out_dir = config.train, Path(out_dir)
    if cfg.stateful and track_count(len(data.train), cfg.batch_size, cfg.seq_len) < 1:
        raise TrainingError("the corpus is too small for stateful training at this batch size and seq_len")
    mesh = data_mesh(cfg.batch_size)  # None with one device; raises if the batch does not split evenly
    tx = make_optimizer(cfg)
    if start:
        model, opt_state, step = start.model, start.opt_state, start.steps
        log.info("continuing from checkpoint version %d (step %d)", start.version, step)
    else:
        model, step = CharRNN(config.model.config(len(data.vocab)), rngs=nnx.Rngs(cfg.seed)), 0
        opt_state = tx.init(nnx.state(model))
    graphdef, params = nnx.split(model)
    if start:  # the step donates its params: train on a copy, so the caller's model (the served one) stays whole
        params = jax.tree.map(jnp.copy, params)
    # Committed to the device, as a loaded checkpoint's arrays are: jit compiles separately for
    # committed and uncommitted arguments, so a fresh run, a warm start and the sampler's use of
    # the returned model would otherwise each compile their own programs.
    device = jax.local_devices()[0]
    params, opt_state = jax.device_put((params, opt_state), device)

    device_data, val = jnp.asarray(data.train), jnp.asarray(data.val)  # the whole corpus on the device, once
    boundaries = post_starts(data.train, cfg.seq_len)
    starts = jnp.asarray(boundaries)
    recency = None
    if cfg.recency_half_life_days is not None:
        recency = tuple(map(jnp.asarray, recency_weights(data.train_records, data.vocab, cfg.recency_half_life_days,
                                                         cfg.seq_len, boundaries)))
        log.info("windows drawn toward newer posts: half as often per %g days older", cfg.recency_half_life_days)
    key = jax.random.key(cfg.seed)
    carry = model.init_carry(cfg.batch_size)
    data_sharding = None
    if mesh is not None:  # data parallel: everything on every device, but each device trains on its rows
        params, opt_state, device_data, val, starts, recency = jax.device_put(
            (params, opt_state, device_data, val, starts, recency), replicated(mesh))
        data_sharding = batch_split(mesh)
        carry = jax.device_put(carry, data_sharding)
        log.info("data parallel over %d devices, %d rows each", mesh.size, cfg.batch_size // mesh.size)
    metrics = MetricsLog(out_dir / "metrics.jsonl")
    baselines = data.baselines  # what a week-one model scores on the same validation text
    log.info("baselines on validation: %s", baselines)
    stats = data.stats
    record = functools.partial(
        RunRecord, data_hash=data.data_hash, format=data.corpus.format, records=len(data.corpus.records),
        posts=stats["posts"], replies=stats["replies"], median_chars=stats["median_chars"], config=config,
        sources={source: found["posts"] for source, found in stats["sources"].items()},
        baselines=baselines, until=stats["until"], forget_digest=data.corpus.forget_digest,
        tokens_per_char=round(data.val_scale, 6), lengths=data.length_quantiles)
    # By default at least once an epoch (but not more often than every 10 steps), so that a small
    # export, overfit long before 500 steps, is caught near its best; and a run that has stopped
    # learning cools down and stops (see PATIENCE).
    epoch = len(data.train) // (cfg.batch_size * cfg.seq_len)
    eval_every = cfg.eval_every or max(10, min(500, epoch))
    best, best_params, best_ngram, stale, version = None, None, None, 0, None
    losses, cooling = [], None  # val losses so far; (first step, its rate, steps) once cooling down
    seconds_before = start.seconds if start else 0.0
    window_losses, window_norms, first_train_loss = [], [], None
    step_time, step_chars = 0.0, 0
    bar = progress_bar(cfg, progress)
    budget = Budget(seconds=cfg.budget_s, max_steps=cfg.max_steps)
    for done in budget:
        lr = learning_rate(cfg, done, budget.progress)
        if cooling:
            began, rate, length = cooling
            lr = rate + (cfg.learning_rate * cfg.min_lr_ratio - rate) * min(1.0, (done + 1 - began) / length)
        t0 = time.monotonic()
        params, opt_state, carry, loss, grad_norm = train_step(
            graphdef, tx, params, opt_state, carry, device_data, starts, key, step, lr, recency,
            batch=cfg.batch_size, seq=cfg.seq_len, stateful=cfg.stateful, speed=config.speed,
            data_sharding=data_sharding,
        )
        loss = float(loss)  # waits for the step: keeps the clock honest and the bar live
        if done:  # the first step includes compilation
            step_time += time.monotonic() - t0
            step_chars += cfg.batch_size * cfg.seq_len
        if not math.isfinite(loss):
            raise TrainingError(f"the loss became NaN or infinite at step {step}; no checkpoint was written for it")
        window_losses.append(loss)
        window_norms.append(float(grad_norm))
        step += 1
        bar.update(1 if cfg.max_steps else min(round(budget.seconds), round(budget.elapsed)) - bar.n)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{best.val_loss:.3f}" if best else "-")
        finished = budget.last or bool(cooling and done + 1 >= cooling[0] + cooling[2])
        if (done + 1) % eval_every and not finished:
            continue

        found = scores(nnx.merge(graphdef, params), data, data.ngram, fit=True, stream=val, speed=config.speed)
        val_loss, val_acc = found.served, found.accuracy  # nats per character, whichever the vocabulary
        train_loss = float(np.mean(window_losses))
        row = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "step": step,
            "train_loss": round(train_loss, 4),
            "val_loss": round(val_loss, 4),  # served: the mixture when there is one
            "lstm_val_loss": round(found.lstm, 4),
            "ngram_weight": None if found.weight is None else round(found.weight, 4),
            "bpc": round(val_loss / math.log(2), 4),
            "val_acc": round(val_acc, 4),
            "grad_norm": round(float(np.mean(window_norms)), 4),
            "lr": lr,
            "chars_per_s": round(step_chars / step_time) if step_time else None,
            "elapsed_s": round(budget.elapsed, 1),
            **dataclasses.asdict(baselines),
        }
        metrics.append(row)
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
        first_train_loss = first_train_loss or train_loss
        check_losses(step, train_loss, val_loss, first_train_loss)
        window_losses, window_norms = [], []
        if best is None or val_loss < best.val_loss:
            stale = 0
            best = record(steps=step, val_loss=val_loss, val_acc=val_acc, trained_at=row["time"],
                          lstm_val_loss=found.lstm, ngram_weight=found.weight,
                          train_seconds=round(seconds_before + budget.elapsed, 1))
            best_params = jax.device_put(jax.tree.map(jnp.copy, params), device)  # the step donates `params`
            best_ngram = None if found.weight is None else data.ngram.with_weight(found.weight)
            if save:
                version = checkpoint.next_version(out_dir)
                checkpoint.save(out_dir, version, nnx.merge(graphdef, params), data.vocab, best.to_json(), opt_state,
                                copy_index=data.copy_index, lexicon=data.lexicon, ngram=best_ngram,
                                posts=data.post_index)
        else:
            stale += 1
        losses.append(val_loss)
        if not cooling and not finished and stopped_learning(losses, stale):
            cooling = (done + 1, lr, max(2 * eval_every, round(COOLDOWN * (done + 1))))
            log.info("val loss has not improved in %d evaluations, nor on average: cooling the learning rate "
                     "down to its floor over %d steps, then stopping", stale, cooling[2])
        if finished:
            break
    bar.close()
    return TrainResult(nnx.merge(graphdef, best_params), data.vocab, best, metrics.rows, step,
                       round(step_chars / step_time) if step_time else None, version, best_ngram)
