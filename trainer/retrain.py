"""One scheduled retrain: read the export, train, and publish only a model that is at least as good.

    read the export -> skip if unchanged -> prepare -> train -> report -> gate -> evaluate -> publish

Everything after training works on what `train` returned in memory: the best model, its record and
its metrics. The serving directory (DANN_CHECKPOINT_DIR) holds published versions only: params and
meta, numbered, the newest `keep_versions` kept. The bot, the web page and `dann sample` read it.
The run's live metrics go to <serving>/.train/metrics.jsonl, emptied at the start of every run.

A published version is written by orbax under a temporary name and renamed when complete, so a
kill -9 mid-publish leaves the previous version as the newest loadable one. With a bucket
(DANN_CHECKPOINT_DIR=s3://...) the folder is its local mirror: a run starts from the newest version
published there, and publishes by uploading it (dann/state/bucket.py); a bucket out of reach stops
the run before training, or keeps the new version unpublished, with one line saying why.
"""

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jax

from dann.settings import TrainerSettings
from dann.state.bucket import BucketError, bucket_for
from dann.state.posts import PostStore, StoredPost, post_store
from dann.voice.bestof import Voice
from dann.voice.filters import blocklist_for, filters_for
from dann.voice.forget import ForgetList, forget_list
from lstm import checkpoint
from lstm.errors import DannError
from lstm.schema import RunConfig, RunRecord
from trainer.config import resolve, write_file
from trainer.corpus import Corpus, Record
from trainer.data import PreparedData, TrainingError, prepare
from trainer.evaluation import evaluate_voice
from trainer.exports import read_corpus
from trainer.report import write_report
from trainer.train import TrainResult, continue_from, model_loss, train
from trainer.tune import tune

log = logging.getLogger("dann.trainer")

PLATEAU_NATS = 0.005  # a run that lowers val loss by less than this has stopped improving


@dataclasses.dataclass
class RunResult:
    outcome: str  # "published", "skipped" or "rejected"
    reason: str
    version: int | None = None  # the version published, or the one still served
    result: TrainResult | None = None
    retuned: bool = False  # the auto-retuner wrote a new config for the next run


def state_dir(serving_dir) -> Path:
    return Path(serving_dir) / ".train"


def tuned_path(checkpoint_dir) -> Path:
    """Where `dann tune` (and the auto-retuner) write the config the trainer uses."""
    return Path(checkpoint_dir) / "tuned.json"


def config_file(settings: TrainerSettings) -> Path | None:
    """DANN_TRAIN_CONFIG if set, else the file `dann tune` wrote beside the checkpoints, if any."""
    tuned = tuned_path(settings.checkpoint_dir)
    return settings.train_config or (tuned if tuned.is_file() else None)


def read_export(path, forget: ForgetList, *, include_dms: bool = False, posts: PostStore | None = None,
                **options) -> Corpus:
    """The export as training sees it: read (private messages left out unless `include_dms`), with
    the post store's posts when `posts` is given (the trainer's, and `dann train` or `dann corpus`
    without a path), minus every record holding a phrase of the forget list. `dann train`, `dann
    eval`, `dann tune` and the trainer all read through this, so they see the same posts."""
    if path is None and posts is None:
        raise DannError("set DANN_EXPORT_PATH to the post export to learn from (or give its path)")
    corpus = read_corpus(path, include_dms=include_dms, **options) if path is not None else Corpus("store", [])
    if posts is not None:
        stored = [Record(p.kind, p.text, p.created_at, p.post_id, platform=p.platform, source=p.source)
                  for p in posts.live()]
        corpus = corpus.with_stored(stored, posts.tombstones())
        if not corpus.records:
            raise DannError("nothing to learn from yet: no export (DANN_EXPORT_PATH) and no posts in the post "
                            "store (`dann import FILE`, or the DANN_LEARN_* accounts)")
    return corpus.without(forget)


def stored_posts(corpus: Corpus) -> list[StoredPost]:
    """An export's posts as the post store keeps them (`dann import`): private messages never; a
    post without an id (a .txt line) under a hash of its text."""
    return [StoredPost(r.platform or "text", r.source_id or hashlib.sha256(r.text.encode()).hexdigest()[:32],
                       r.kind, r.text, r.created_at) for r in corpus.records if not r.private]


def configured(settings: TrainerSettings, corpus: Corpus) -> RunConfig:
    """The trainer's hyperparameters for this export (trainer/config.py's `resolve`)."""
    return resolve(chars=corpus.chars, minutes=settings.train_minutes, file=config_file(settings),
                   recency_half_life_days=settings.recency_half_life_days)


def retrain(settings: TrainerSettings, config: RunConfig | None = None, progress: bool = False) -> RunResult:
    serving = Path(settings.checkpoint_dir)
    bucket = bucket_for(settings)
    if bucket is not None:  # the newest published version into the local folder, and leftovers out
        bucket.prepare()
    corpus = read_export(settings.export_path, forget_list(settings), include_dms=settings.include_dms,
                         posts=post_store(settings))
    config = config or configured(settings, corpus)
    log.info("hyperparameters: %s", config.describe())
    data_hash = corpus.data_hash()
    try:
        served = checkpoint.load_latest(serving)
    except checkpoint.NoCheckpoint:
        served = None
    served_record = RunRecord.of(served) if served else None

    unchanged = bool(served and served_record.data_hash == data_hash
                     and served_record.config.signature() == config.signature()
                     and served_record.forget_digest == corpus.forget_digest)
    if unchanged and (since := converged_since(serving, served.version)) is not None:
        reason = f"converged on this export since version {since}: the last run improved val loss by less than " \
                 f"{PLATEAU_NATS}; a changed export, forget list or config trains again"
        log.info("skipping: %s", reason)
        return RunResult("skipped", reason, served.version)
    if unchanged:
        log.info("the export is unchanged since version %d: continuing to train the served model", served.version)
    if corpus.dropped.get("forgotten"):
        log.info("left out %d record(s) holding a forgotten phrase", corpus.dropped["forgotten"])

    state = state_dir(serving)
    shutil.rmtree(state, ignore_errors=True)  # whatever a killed run left: start this one clean
    stats = corpus.stats()
    log.info("training on %s (%d posts, %d replies from %s, hash %s) on %s", settings.export_path or "the post store",
             stats["posts"], stats["replies"], ", ".join(f"{n} {s['posts']}" for n, s in stats["sources"].items()),
             data_hash, jax.devices()[0].platform.upper())
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:
        data = prepare(corpus, config.train, blocklist=blocklist_for(settings))
        result = train(data, config, state, start=continue_from(served, data, config), save=False,
                       progress=progress)
    except TrainingError as error:
        log.warning("not publishing: %s", error)
        return RunResult("rejected", str(error), served.version if served else None)

    new_loss = result.record.val_loss
    old_loss = model_loss(served.model, served.vocab, data, served.ngram) if served else math.inf
    plateau = not new_loss < old_loss - PLATEAU_NATS
    # Training on has stopped paying: whichever version is served after this run is where it converged.
    converged = unchanged and plateau
    header = f"run {run_id}: val loss {new_loss:.4f}, served model {old_loss:.4f}"
    report = write_report(serving / "reports" / run_id, result.metrics, result.model, result.vocab, header,
                          lexicon=data.lexicon if settings.known_words else None, ngram=result.ngram)
    retuned = settings.auto_retune and served is not None and plateau
    if retuned:
        retune(settings, corpus, config, new_loss, old_loss)
    # On the same export the served model is the one to beat outright; on a new one (other
    # validation posts) a model no worse within the tolerance is the newer voice.
    tolerance = 0.0 if unchanged else settings.promote_tolerance
    worse = new_loss >= old_loss if unchanged else new_loss > old_loss + tolerance
    if not math.isfinite(new_loss) or worse:
        reason = (f"new val loss {new_loss:.4f} is worse than the served model's {old_loss:.4f} on the same "
                  f"validation posts (tolerance {tolerance}); keeping version {served.version}")
        log.warning("not publishing: %s", reason)
        if converged:
            mark_converged(serving, served.version, old_loss - new_loss)
        return RunResult("rejected", reason, served.version, result, retuned)
    quality = measure(settings, result, data, report)
    if quality is not None and quality["copy_rate"] > settings.max_copy_rate:
        reason = (f"{quality['copy_rate']:.1%} of the texts sampled at publish time had nothing but copies of "
                  f"training posts to offer (DANN_MAX_COPY_RATE is {settings.max_copy_rate:.1%}): this model "
                  f"recites rather than writes; keeping "
                  + (f"version {served.version}" if served else "no model"))
        log.warning("not publishing: %s", reason)
        return RunResult("rejected", reason, served.version if served else None, result, retuned)
    record = dataclasses.replace(result.record, served_val_loss_before=old_loss if served else None,
                                 report=str(report.relative_to(serving)), eval=quality)
    version = checkpoint.next_version(serving)
    checkpoint.save(serving, version, result.model, result.vocab, record.to_json(), keep=settings.keep_versions,
                    copy_index=data.copy_index, lexicon=data.lexicon, ngram=result.ngram, posts=data.post_index)
    if bucket is not None:
        try:
            bucket.publish(version, keep=settings.keep_versions, report=record.report)
        except BucketError as error:
            # Unpublished, it must not be what this trainer compares against or numbers after.
            shutil.rmtree(serving / str(version), ignore_errors=True)
            reason = f"{error}; the bucket still serves " + (f"version {served.version}" if served else "no model")
            log.warning("not publishing: %s", reason)
            return RunResult("rejected", reason, served.version if served else None, result, retuned)
    if converged:
        mark_converged(serving, version, old_loss - new_loss)
    reason = f"val loss {new_loss:.4f}" + (f" (served model: {old_loss:.4f})" if served else " (first model)")
    log.info("published version %d: %s; report in %s", version, reason, report)
    return RunResult("published", reason, version, result, retuned)


def converged_path(checkpoint_dir) -> Path:
    return Path(checkpoint_dir) / "converged.json"


def mark_converged(checkpoint_dir, version: int, improvement: float) -> None:
    """Remember that training version `version` on its own export further improved it by less than
    PLATEAU_NATS, so the next runs skip until the export, the forget list or the config changes
    (the published version's record carries those). Written atomically."""
    path = converged_path(checkpoint_dir)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps({"version": version, "improvement": round(improvement, 5)}) + "\n")
    partial.replace(path)
    log.info("val loss improved by %.4f (< %s) on an unchanged export: converged since version %d", improvement,
             PLATEAU_NATS, version)


def converged_since(checkpoint_dir, served_version: int) -> int | None:
    """The served version, if training it on its unchanged export stopped improving it; else None.
    A mark about another version (a newer one was published since) does not count."""
    try:
        found = json.loads(converged_path(checkpoint_dir).read_text())
    except (OSError, ValueError):
        return None
    return served_version if isinstance(found, dict) and found.get("version") == served_version else None


def measure(settings: TrainerSettings, result: TrainResult, data: PreparedData, report: Path) -> dict | None:
    """What the model to publish serves (dann eval's numbers: copy rate, distinct-n, length), kept
    in the report's eval.json and in the published record."""
    if not settings.publish_eval_samples:
        return None
    voice = Voice(result.model, result.vocab, data.copy_index, result.record,
                  lexicon=data.lexicon if settings.known_words else None, ngram=result.ngram)
    quality = evaluate_voice(voice, data, samples=settings.publish_eval_samples, best_of=settings.best_of,
                             temperature=settings.temperature, max_chars=settings.max_chars,
                             val_scores=(result.record.val_loss, result.record.val_acc),
                             filters=filters_for(settings))
    (report / "eval.json").write_text(json.dumps(quality, indent=2) + "\n")
    return quality


def retune(settings: TrainerSettings, corpus: Corpus, config: RunConfig, new_loss: float, old_loss: float) -> None:
    """The auto-retuner: validation loss stopped improving, so look for a better config for next time."""
    log.info("val loss %.4f did not improve on %.4f by %.3f: retuning for %g minutes", new_loss, old_loss,
             PLATEAU_NATS, settings.retune_minutes)
    result = tune(corpus, settings.retune_minutes, config)
    path = write_file(tuned_path(settings.checkpoint_dir), result["best"]["model"], result["best"]["train"])
    if settings.train_config is not None:
        log.warning("wrote %s, but DANN_TRAIN_CONFIG=%s is set and wins: unset it to use the tuned config",
                    path, settings.train_config)
    elif result["current_is_best"]:
        log.info("retuning kept the current config (val loss %.4f)", result["current"]["val_loss"])
    else:
        log.info("retuned: %s (val loss %.4f against %.4f); the next run uses it", path, result["best"]["val_loss"],
                 result["current"]["val_loss"])
