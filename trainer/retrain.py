"""One scheduled retrain: read the export, train, and publish only a model that is at least as good.

Two directories, so that retention never fights:
- the serving directory (DANN_CHECKPOINT_DIR) holds published versions only: params and meta,
  numbered, the newest `keep_versions` kept. The bot, the web page and `dann sample` read it.
- the state directory (<serving>/.train) holds this run's checkpoints (with optimizer state). It is
  emptied at the start of every run, so a run killed at any moment is simply run again.

A published version is written by orbax under a temporary name and renamed when complete, so a
kill -9 mid-publish leaves the previous version as the newest loadable one.
"""

import dataclasses
import json
import logging
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import jax
from flax import nnx

from lstm import checkpoint
from lstm.settings import Settings
from trainer.batches import encode_records, split_records
from trainer.corpus import Corpus, read_corpus
from trainer.evaluation import evaluate_checkpoint
from trainer.report import write_report
from trainer.train import TrainConfig, TrainingError, default_options, evaluate, train
from trainer.tune import tune, write_config

log = logging.getLogger("dann.trainer")

PLATEAU_NATS = 0.005  # a run that lowers val loss by less than this has stopped improving


@dataclasses.dataclass
class RunResult:
    outcome: str  # "published", "skipped" or "rejected"
    reason: str
    version: int | None = None  # the version published, or the one still served
    summary: dict | None = None
    retuned: bool = False  # the auto-retuner wrote a new config for the next run


def state_dir(serving_dir) -> Path:
    return Path(serving_dir) / ".train"


def training_signature(config: TrainConfig, model_options: dict) -> dict:
    """What, besides the data, decides the trained model. A change means retrain even on the same export."""
    settings = dataclasses.asdict(config)
    settings.pop("minutes")  # a longer budget alone is not a reason to retrain identical data
    settings.pop("max_steps")
    return {"train": settings, "model": dict(sorted(model_options.items()))}


def served_loss(served: checkpoint.Checkpoint, val_records) -> float:
    """The served model's loss on this run's validation posts, in its own vocabulary."""
    data = encode_records(val_records, served.vocab)
    graphdef, params = nnx.split(served.model)
    return evaluate(graphdef, params, jax.numpy.asarray(data))[0]


def tuned_path(checkpoint_dir) -> Path:
    """Where `dann tune` (and the auto-retuner) write the config the trainer uses."""
    return Path(checkpoint_dir) / "tuned.json"


def read_config(path) -> dict:
    """A hyperparameter file, {"model": {...}, "train": {...}} (DANN_TRAIN_CONFIG's format, what
    `dann tune` writes), with both sections present."""
    try:
        options = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"train config {path}: cannot be read ({error})") from None
    return {"model": options.get("model", {}), "train": options.get("train", {})}


def configured(settings: Settings, corpus: Corpus) -> tuple[TrainConfig, dict]:
    """The trainer's hyperparameters for this export: DANN_TRAIN_CONFIG's file if set, else the one
    `dann tune` wrote beside the checkpoints, over the defaults for the export's size and the device."""
    tuned = tuned_path(settings.checkpoint_dir)
    path = settings.train_config or (tuned if tuned.is_file() else None)
    options = default_options(corpus, read_config(path) if path is not None else None)
    try:
        return TrainConfig(**{"minutes": settings.train_minutes, **options["train"]}), options["model"]
    except TypeError as error:
        raise ValueError(f"train config {path}: {error}") from None


def retrain(settings: Settings, config: TrainConfig | None = None, model_options: dict | None = None,
            progress: bool = False) -> RunResult:
    if settings.export_path is None:
        raise ValueError("set DANN_EXPORT_PATH to the post export the trainer should learn from")
    corpus = read_corpus(settings.export_path)
    if config is None:
        config, model_options = configured(settings, corpus)
    model_options = model_options or {}
    serving = Path(settings.checkpoint_dir)
    data_hash = corpus.data_hash()
    signature = training_signature(config, model_options)
    try:
        served = checkpoint.load_latest(serving)
    except checkpoint.NoCheckpoint:
        served = None

    if served and served.info.get("data_hash") == data_hash and served.info.get("signature") == signature:
        reason = f"the export is unchanged (hash {data_hash}) since version {served.version}; nothing to do"
        log.info("skipping: %s", reason)
        return RunResult("skipped", reason, served.version)

    state = state_dir(serving)
    shutil.rmtree(state, ignore_errors=True)  # whatever a killed run left: start this one clean
    stats = corpus.stats()
    log.info("training on %s (%d posts, %d replies, hash %s) on %s", settings.export_path,
             stats["posts"], stats["replies"], data_hash, jax.devices()[0].platform.upper())
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    try:
        summary = train(corpus, model_options, config, state, warm_start_dir=serving if served else None,
                        progress=progress)
    except TrainingError as error:
        log.warning("not publishing: %s", error)
        return RunResult("rejected", str(error), served.version if served else None)
    best = checkpoint.load_latest(state)
    rows = [json.loads(line) for line in (state / "metrics.jsonl").read_text().splitlines()]

    new_loss = best.info["val_loss"]
    _, val_records = split_records(corpus.records, config.val_fraction)
    old_loss = served_loss(served, val_records) if served else math.inf
    header = f"run {run_id}: val loss {new_loss:.4f}, served model {old_loss:.4f}"
    report = write_report(serving / "reports" / run_id, rows, best.model, best.vocab, header)
    retuned = settings.auto_retune and served is not None and not new_loss < old_loss - PLATEAU_NATS
    if retuned:
        retune(settings, corpus, config, model_options, new_loss, old_loss)
    if not math.isfinite(new_loss) or new_loss > old_loss + settings.promote_tolerance:
        reason = (f"new val loss {new_loss:.4f} is worse than the served model's {old_loss:.4f} on the same "
                  f"validation posts (tolerance {settings.promote_tolerance}); keeping version {served.version}")
        log.warning("not publishing: %s", reason)
        return RunResult("rejected", reason, served.version, summary, retuned)
    # What the published model's samples look like: copy rate, distinct-n, length (dann eval's numbers).
    quality = None
    if settings.publish_eval_samples:
        quality = evaluate_checkpoint(best, corpus, samples=settings.publish_eval_samples, best_of=settings.best_of,
                                      temperature=settings.temperature, max_chars=settings.max_chars)
        (report / "eval.json").write_text(json.dumps(quality, indent=2) + "\n")

    version = (served.version if served else 0) + 1
    versions = checkpoint.versions(serving)
    version = max(version, (versions[0] + 1) if versions else 1)
    info = {**best.info, "has_opt": False, "signature": signature, "served_val_loss_before": old_loss,
            "report": str(report.relative_to(serving)), "eval": quality}
    checkpoint.save(serving, version, best.model, best.vocab, info, keep=settings.keep_versions,
                    copy_index=best.copy_index)
    reason = f"val loss {new_loss:.4f}" + (f" (served model: {old_loss:.4f})" if served else " (first model)")
    log.info("published version %d: %s; report in %s", version, reason, report)
    return RunResult("published", reason, version, summary, retuned)


def retune(settings: Settings, corpus, config: TrainConfig, model_options: dict, new_loss: float,
           old_loss: float) -> None:
    """The auto-retuner: validation loss stopped improving, so look for a better config for next time."""
    log.info("val loss %.4f did not improve on %.4f by %.3f: retuning for %g minutes", new_loss, old_loss,
             PLATEAU_NATS, settings.retune_minutes)
    result = tune(corpus, settings.retune_minutes, model_options, config)
    path = write_config(tuned_path(settings.checkpoint_dir), result)
    if settings.train_config is not None:
        log.warning("wrote %s, but DANN_TRAIN_CONFIG=%s is set and wins: unset it to use the tuned config",
                    path, settings.train_config)
    elif result["current_is_best"]:
        log.info("retuning kept the current config (val loss %.4f)", result["current"]["val_loss"])
    else:
        log.info("retuned: %s (val loss %.4f against %.4f); the next run uses it", path, result["best"]["val_loss"],
                 result["current"]["val_loss"])
