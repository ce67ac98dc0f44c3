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
from trainer.corpus import read_corpus
from trainer.report import write_report
from trainer.train import TrainConfig, TrainingError, evaluate, train

log = logging.getLogger("dann.trainer")


@dataclasses.dataclass
class RunResult:
    outcome: str  # "published", "skipped" or "rejected"
    reason: str
    version: int | None = None  # the version published, or the one still served
    summary: dict | None = None


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


def configured(settings: Settings) -> tuple[TrainConfig, dict]:
    """The trainer's hyperparameters: DANN_TRAIN_CONFIG's file if set, else the defaults."""
    options = {"model": {}, "train": {}}
    if settings.train_config is not None:
        try:
            options = {**options, **json.loads(Path(settings.train_config).read_text())}
        except (OSError, ValueError) as error:
            raise ValueError(f"DANN_TRAIN_CONFIG {settings.train_config}: cannot be read ({error})") from None
    train_options = {"minutes": settings.train_minutes, **options["train"]}
    try:
        return TrainConfig(**train_options), options["model"]
    except TypeError as error:
        raise ValueError(f"DANN_TRAIN_CONFIG {settings.train_config}: {error}") from None


def retrain(settings: Settings, config: TrainConfig | None = None, model_options: dict | None = None,
            progress: bool = False) -> RunResult:
    if settings.export_path is None:
        raise ValueError("set DANN_EXPORT_PATH to the post export the trainer should learn from")
    if config is None:
        config, model_options = configured(settings)
    model_options = model_options or {}
    serving = Path(settings.checkpoint_dir)
    corpus = read_corpus(settings.export_path)
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
    if not math.isfinite(new_loss) or new_loss > old_loss + settings.promote_tolerance:
        reason = (f"new val loss {new_loss:.4f} is worse than the served model's {old_loss:.4f} on the same "
                  f"validation posts (tolerance {settings.promote_tolerance}); keeping version {served.version}")
        log.warning("not publishing: %s", reason)
        return RunResult("rejected", reason, served.version, summary)

    version = (served.version if served else 0) + 1
    versions = checkpoint.versions(serving)
    version = max(version, (versions[0] + 1) if versions else 1)
    info = {**best.info, "has_opt": False, "signature": signature, "served_val_loss_before": old_loss,
            "report": str(report.relative_to(serving))}
    checkpoint.save(serving, version, best.model, best.vocab, info, keep=settings.keep_versions)
    reason = f"val loss {new_loss:.4f}" + (f" (served model: {old_loss:.4f})" if served else " (first model)")
    log.info("published version %d: %s; report in %s", version, reason, report)
    return RunResult("published", reason, version, summary)
