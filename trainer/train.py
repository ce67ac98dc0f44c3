"""The train loop: a pure loss, a jitted step, evaluation, and one plain loop with a budget.

The learning rate is an argument of the step, not baked into the optimizer, because with a time
budget we do not know the number of steps in advance: the schedule (linear warmup, then cosine
decay to `min_lr_ratio`) follows progress = max(steps done / max_steps, time used / budget).
"""

import dataclasses
import functools
import json
import logging
import math
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from lstm import checkpoint
from lstm.copyindex import CopyIndex
from lstm.model import CharRNN, ModelConfig
from lstm.vocab import Vocab
from trainer.baselines import baselines
from trainer.batches import encode_records, post_starts, random_windows, split_records, track_count, track_windows
from trainer.corpus import Corpus
from trainer.mesh import batch_split, data_mesh, replicated

log = logging.getLogger("dann.train")

PATIENCE = 10  # evaluations without a better val loss before a run stops early


class TrainingError(Exception):
    """Training cannot go on (too little data, NaN, divergence). The last good checkpoint is kept."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # small batches: more updates per second of CPU (see the README's probes)
    seq_len: int = 64
    learning_rate: float = 6e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    minutes: float | None = 5.0  # stop at whichever of minutes / max_steps comes first
    max_steps: int | None = None
    eval_every: int | None = None  # steps between evaluations; None: every 500, or every epoch if sooner
    stateful: bool = False  # carry the hidden state across consecutive windows (truncated BPTT)
    val_fraction: float = 0.1
    min_char_count: int = 5  # rarer characters become <unk> (or are dropped, see rare_chars)
    rare_chars: str = "unk"
    seed: int = 0
    # The copy filter (lstm/copyindex.py) rejects generated text holding a run of this many words,
    # or this many characters, found verbatim in the corpus. Its index is built here, at training time.
    copy_words: int = 7
    copy_chars: int = 40

    def __post_init__(self):
        if self.minutes is None and self.max_steps is None:
            raise ValueError("give a time budget (minutes) or a step count (max_steps)")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, not {self.minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be between 0 and 0.5, not {self.val_fraction}")


# A small export overfits the default model within a few dozen steps and then loses to a smoothed
# n-gram. Strong dropout, weight drop on W_hh and small batches won there (README, "Small exports"),
# measured at 581, 20k and 100k characters. The plain defaults were chosen on 1M (Shakespeare).
SMALL_EXPORT_CHARS = 100_000
SMALL_EXPORT = {"model": {"dropout": 0.5, "weight_drop": 0.8},
                "train": {"learning_rate": 0.01, "batch_size": 8, "seq_len": 32}}
# On a GPU the plain defaults (chosen for a 2-core CPU) leave it idle: in 3 minutes on an H100 this
# reached Shakespeare val 1.4551 against the plain defaults' 1.4872 (README, Measurements).
GPU = {"model": {"hidden": 512, "layers": 2}, "train": {"learning_rate": 3e-3, "batch_size": 64, "seq_len": 128}}


def default_options(corpus: Corpus, given: dict | None = None, platform: str | None = None) -> dict:
    """{"model": {...}, "train": {...}}: the defaults for this export's size and this device
    (`platform`, default JAX's backend), with `given` (a config file's sections, or flags) on top:
    what anyone set explicitly wins."""
    given, base, why = given or {}, {"model": {}, "train": {}}, None
    chars = sum(len(r.text) for r in corpus.records)
    if chars < SMALL_EXPORT_CHARS:
        base, why = SMALL_EXPORT, f"a small export ({chars} characters)"
    elif (platform or jax.default_backend()) in ("gpu", "cuda", "rocm"):
        base, why = GPU, "a GPU"
    if why:
        log.info("%s: unless set otherwise, %s", why,
                 ", ".join(f"{k} {v}" for part in base.values() for k, v in part.items()))
    return {part: {**base[part], **given.get(part, {})} for part in ("model", "train")}


@functools.lru_cache
def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AdamW with clipping, minus the learning rate (train_step applies it). Only matrices decay.

    Cached: the optimizer is a static argument of the jitted step, and a fresh one (new closures)
    would make every train() call compile the step again."""
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)  # noqa: E731
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.scale_by_adam(),
        optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
    )


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    warmup = min(1.0, (step + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * warmup * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def loss_fn(params, graphdef, x, y, carry, dropout_key=None):
    """Mean cross-entropy in nats per character, and (new carry, accuracy)."""
    model = nnx.merge(graphdef, params)
    logits, carry = model(x, carry, dropout_key=dropout_key)  # (B, T, V)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
    return loss, (carry, accuracy)


def step_fn(graphdef, tx, params, opt_state, carry, data, starts, key, step, lr, *, batch, seq, stateful,
            data_sharding=None):
    """One optimizer step on a batch drawn from `data` on the device. Returns the new state and
    (loss, grad_norm) as device scalars.

    With several devices, `data_sharding` (trainer/mesh.py) splits the batch rows over them: the
    batch is drawn here from the replicated corpus, so this constraint is what shards it."""
    if stateful:
        window = step % track_count(data.shape[0], batch, seq)
        x, y = track_windows(data, window, batch, seq)
        carry = jax.tree.map(lambda c: jnp.where(window == 0, 0.0, c), carry)  # a new pass starts fresh
    else:
        x, y = random_windows(data, starts, jax.random.fold_in(key, step), batch, seq)
        carry = jax.tree.map(jnp.zeros_like, carry)
    if data_sharding is not None:
        x, y, carry = jax.lax.with_sharding_constraint((x, y, carry), data_sharding)  # (B, T) rows split
    dropout_key = jax.random.fold_in(jax.random.fold_in(key, step), 1)
    (loss, (carry, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, graphdef, x, y, carry, dropout_key
    )
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
    carry = jax.lax.stop_gradient(carry)
    return params, opt_state, carry, loss, optax.tree.norm(grads)


train_step = jax.jit(step_fn, static_argnames=("graphdef", "tx", "batch", "seq", "stateful", "data_sharding"),
                     donate_argnums=(2, 3, 4))


@partial(jax.jit, static_argnames=("graphdef", "batch", "seq"))
def eval_step(graphdef, params, carry, data, window, *, batch, seq):
    x, y = track_windows(data, window, batch, seq)
    loss, (carry, accuracy) = loss_fn(params, graphdef, x, y, carry)
    return loss, accuracy, carry


def evaluate(graphdef, params, data) -> tuple[float, float]:
    """Loss (nats/char) and next-char accuracy over the whole stream, read in order with the state
    carried across windows, as a reader of the text would."""
    n = data.shape[0]
    batch = max(1, min(64, n // 512))
    seq = min(256, n // batch - 1)
    windows = track_count(n, batch, seq)
    model = nnx.merge(graphdef, params)
    carry = model.init_carry(batch)
    losses, accuracies = [], []
    for w in range(windows):
        loss, accuracy, carry = eval_step(graphdef, params, carry, data, w, batch=batch, seq=seq)
        losses.append(loss)
        accuracies.append(accuracy)
    return float(np.mean(losses)), float(np.mean(accuracies))


def prepare_data(corpus: Corpus, config: TrainConfig) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """The vocabulary (of the training posts only) and the encoded training and validation streams."""
    train_records, val_records = split_records(corpus.records, config.val_fraction)
    vocab = Vocab.build((r.text for r in train_records), config.min_char_count, config.rare_chars)
    train_data = encode_records(train_records, vocab)
    val_data = encode_records(val_records, vocab)
    if not train_records or len(train_data) < config.seq_len + 2:
        raise TrainingError(
            f"the corpus is too small to train on: {len(corpus.records)} posts, {len(train_data)} training "
            f"symbols; sequences of {config.seq_len} need at least {config.seq_len + 2} and 2 posts"
        )
    return vocab, train_data, val_data


def _warm_start(checkpoint_dir, vocab: Vocab, model_config: ModelConfig, tx):
    """The latest checkpoint's params and optimizer state when it has the same vocabulary and
    architecture, else None (train from scratch)."""
    try:
        latest = checkpoint.load_latest(checkpoint_dir)
    except checkpoint.NoCheckpoint:
        return None
    if latest.vocab != vocab or latest.model.config != model_config:
        log.info("checkpoint version %d has another vocabulary or architecture: training from scratch", latest.version)
        return None
    opt_state = tx.init(nnx.state(latest.model))
    if latest.info.get("has_opt"):  # published (serving) versions carry no optimizer state
        abstract_opt = jax.eval_shape(lambda: opt_state)
        opt_state = checkpoint.load_version(checkpoint_dir, latest.version, abstract_opt).opt_state
    return latest, opt_state


def train(
    corpus: Corpus,
    model_options: dict,
    config: TrainConfig,
    checkpoint_dir,
    *,
    resume: bool = True,
    warm_start_dir=None,
    progress: bool = True,
) -> dict:
    """Train on `corpus`, saving each improvement of the run to `checkpoint_dir` as a new version,
    so the newest version is always the best model so far (orbax never overwrites a version).

    Resumes (or warm-starts, if the data changed) from the latest version in `warm_start_dir`
    (default: `checkpoint_dir`) when its vocabulary and architecture match. Returns the summary
    that `dann train` prints.
    """
    checkpoint_dir = Path(checkpoint_dir)
    vocab, train_data, val_data = prepare_data(corpus, config)
    if config.stateful and track_count(len(train_data), config.batch_size, config.seq_len) < 1:
        raise TrainingError("the corpus is too small for stateful training at this batch size and seq_len")
    mesh = data_mesh(config.batch_size)  # None with one device; raises if the batch does not split evenly
    model_config = ModelConfig(vocab_size=len(vocab), **model_options)
    tx = make_optimizer(config)

    start = _warm_start(warm_start_dir or checkpoint_dir, vocab, model_config, tx) if resume else None
    if start:
        previous, opt_state = start
        model, step = previous.model, int(previous.info.get("steps", 0))
        log.info("continuing from checkpoint version %d (step %d)", previous.version, step)
    else:
        model, step = CharRNN(model_config, rngs=nnx.Rngs(config.seed)), 0
        opt_state = tx.init(nnx.state(model))
    graphdef, params = nnx.split(model)
    versions = checkpoint.versions(checkpoint_dir)
    version = versions[0] if versions else 0  # the last one written; each save takes the next

    data, val = jnp.asarray(train_data), jnp.asarray(val_data)  # the whole corpus on the device, once
    starts = jnp.asarray(post_starts(train_data, config.seq_len))
    key = jax.random.key(config.seed)
    carry = model.init_carry(config.batch_size)
    data_sharding = None
    if mesh is not None:  # data parallel: everything on every device, but each device trains on its rows
        params, opt_state, data, val, starts = jax.device_put((params, opt_state, data, val, starts), replicated(mesh))
        data_sharding = batch_split(mesh)
        carry = jax.device_put(carry, data_sharding)
        log.info("data parallel over %d devices, %d rows each", mesh.size, config.batch_size // mesh.size)
    first_step, budget_s = step, (config.minutes * 60 if config.minutes else math.inf)
    metrics_path = checkpoint_dir / "metrics.jsonl"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stats = corpus.stats()
    copy_index = CopyIndex.build((r.text for r in corpus.records), words=config.copy_words, chars=config.copy_chars)
    # What a week-one model scores on the same validation text: the LSTM has to beat these.
    baseline = baselines(train_data, val_data, len(vocab))
    log.info("baselines on validation: %s", baseline)
    base_info = {
        "data_hash": corpus.data_hash(),
        "records": len(corpus.records),
        "posts": stats["posts"],
        "replies": stats["replies"],
        "median_chars": stats["median_chars"],
        "format": corpus.format,
        "train": dataclasses.asdict(config),
        "has_opt": True,
        **baseline,
    }
    # By default at least once an epoch (but not more often than every 10 steps), so that a small
    # export, overfit long before 500 steps, is caught near its best; and a run stops once PATIENCE
    # evaluations in a row bring nothing better (the best version is saved already).
    epoch = len(train_data) // (config.batch_size * config.seq_len)
    eval_every = config.eval_every or max(10, min(500, epoch))
    stale = 0
    best, window_losses, window_norms = None, [], []
    first_window_loss = None
    began = time.monotonic()
    step_time, step_chars = 0.0, 0

    time_format = "{l_bar}{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]"
    lr = learning_rate(config, step, 0.0)
    bar = tqdm(total=config.max_steps or round(budget_s), unit="step", disable=not progress,
               bar_format=None if config.max_steps else time_format)
    while True:
        elapsed = time.monotonic() - began
        done_steps = step - first_step
        progress_frac = max(
            done_steps / config.max_steps if config.max_steps else 0.0, elapsed / budget_s
        )
        finished = progress_frac >= 1.0
        if done_steps and (finished or done_steps % eval_every == 0):
            val_loss, val_acc = evaluate(graphdef, params, val)
            train_loss = float(np.mean(window_losses))
            row = {
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "step": step,
                "train_loss": round(train_loss, 4),
                "val_loss": round(val_loss, 4),
                "bpc": round(val_loss / math.log(2), 4),
                "val_acc": round(val_acc, 4),
                "grad_norm": round(float(np.mean(window_norms)), 4),
                "lr": lr,
                "chars_per_s": round(step_chars / step_time) if step_time else None,
                "elapsed_s": round(time.monotonic() - began, 1),
                **baseline,
            }
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
            first_window_loss = first_window_loss or train_loss
            if not (math.isfinite(val_loss) and math.isfinite(train_loss)):
                raise TrainingError(f"the loss became NaN or infinite by step {step}; no checkpoint was written for it")
            if train_loss > first_window_loss + 1.0:
                raise TrainingError(
                    f"training diverged at step {step} (train loss {train_loss:.2f}, first was "
                    f"{first_window_loss:.2f}); lower the learning rate. No checkpoint was written for it"
                )
            stale = 0 if best is None or val_loss < best["val_loss"] else stale + 1
            if stale >= PATIENCE:
                log.info("stopping at step %d: %d evaluations without a better val loss", step, PATIENCE)
                finished = True
            if best is None or val_loss < best["val_loss"]:
                best = {k: row[k] for k in ("val_loss", "bpc", "val_acc", "step")}
                info = {**base_info, "steps": step, "val_loss": val_loss, "val_acc": val_acc,
                        "trained_at": row["time"]}
                version += 1
                checkpoint.save(checkpoint_dir, version, nnx.merge(graphdef, params), vocab, info, opt_state,
                                copy_index=copy_index)
            window_losses, window_norms = [], []
        if finished:
            break

        lr = learning_rate(config, step, progress_frac)
        t0 = time.monotonic()
        params, opt_state, carry, loss, grad_norm = train_step(
            graphdef, tx, params, opt_state, carry, data, starts, key, step, lr,
            batch=config.batch_size, seq=config.seq_len, stateful=config.stateful, data_sharding=data_sharding,
        )
        loss = float(loss)  # waits for the step: keeps the clock honest and the bar live
        if step > first_step:  # the first step includes compilation
            step_time += time.monotonic() - t0
            step_chars += config.batch_size * config.seq_len
        if not math.isfinite(loss):
            raise TrainingError(f"the loss became NaN or infinite at step {step}; no checkpoint was written for it")
        window_losses.append(loss)
        window_norms.append(float(grad_norm))
        step += 1
        if config.max_steps:
            bar.update(1)
        else:
            bar.update(min(round(budget_s), round(time.monotonic() - began)) - bar.n)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{best['val_loss']:.3f}" if best else "-")
    bar.close()
    return {
        "val_loss": round(best["val_loss"], 4),
        "bpc": best["bpc"],
        "val_acc": best["val_acc"],
        **baseline,
        "steps": step,
        "chars_per_s": round(step_chars / step_time) if step_time else None,
        "version": version,
        "checkpoint_dir": str(checkpoint_dir),
    }
