"""What people are told about the served model: one summary, rendered as JSON or as text.

`dann status`, `/dann status` and the web page's /api/status all show `summary()`; the CLI and the
bot render it with `render_text`, the bot passing its own markup for emphasis and for times.
"""

import dataclasses
import datetime
from collections.abc import Callable

from dann.serving import votes
from dann.voice.bestof import Voice


def summary(voice: Voice) -> dict:
    """The served model's facts, JSON-ready."""
    record = voice.record
    baselines = dataclasses.asdict(record.baselines) if record.baselines else {}
    return {
        "version": voice.version,
        "trained_at": record.trained_at or None,
        "until": record.until,  # the newest post it learned from
        "val_loss": record.val_loss,  # served: the mixture when the n-gram is mixed in
        "lstm_val_loss": record.lstm_val_loss,
        "ngram_weight": record.ngram_weight,
        "steps": record.steps,
        "train_seconds": record.train_seconds,
        "posts": record.posts,
        "replies": record.replies,
        "export_hash": record.data_hash,
        "report": record.report,  # the trainer's report folder, relative to the checkpoint directory
        "ngram_val_loss": baselines.get("ngram_val_loss"),
        "ngram_order": baselines.get("ngram_order"),
        "unigram_val_loss": baselines.get("unigram_val_loss"),
        "copy_filter": voice.copy_index.settings() if voice.copy_index else None,  # None: saved without an index
        "eval": record.eval,  # the trainer's `dann eval` of this version when it was published
    }


def _plain_time(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="minutes")


def render_text(status: dict | None, *, where: str | None = None, bold: Callable[[str], str] = str,
                when: Callable[[datetime.datetime], str] = _plain_time) -> str:
    """`status` (summary(), with the service's "best_of" and "candidates", the CLI's "next_run"
    and the game's "game" tally where known) as sentences, one per line. `where` names the checkpoint directory."""
    next_run = status.get("next_run") if status else None
    if not status or status.get("version") is None:
        lines = ["No model has been trained yet" + (f" in {where}" if where else "") + "."]
        if status and status.get("new_posts"):
            lines.append(f"{status['new_posts']} post(s) of the person are in the post store, waiting for it.")
        if next_run:
            lines.append(f"Next scheduled retrain: {next_run}.")
        return "\n".join(lines)
    lines = [f"Serving model version {bold(str(status['version']))}" + (f" from {where}" if where else "") + "."]
    trained_at = _parse_time(status.get("trained_at"))
    if trained_at:
        lines.append(f"Trained {when(trained_at)}.")
    if status.get("val_loss") is not None:
        loss = f"Validation loss {status['val_loss']:.3f} nats per character"
        if status.get("ngram_weight") is not None:
            loss += (f" as served, the LSTM ({status['lstm_val_loss']:.3f} alone) mixed with the n-gram at weight "
                     f"{status['ngram_weight']:.2f}")
        if status.get("ngram_val_loss") is not None:
            loss += (f"; baselines {status['ngram_val_loss']:.3f} ({status.get('ngram_order')}-gram) and "
                     f"{status['unigram_val_loss']:.3f} (unigram)")
        lines.append(loss + ".")
    if status.get("steps") is not None:
        minutes = f" ({status['train_seconds'] / 60:.0f} minutes)" if status.get("train_seconds") else ""
        lines.append(f"{status['steps']} training steps{minutes} on {status.get('posts') or 0} posts and "
                     f"{status.get('replies') or 0} replies" +
                     (f" (export {status['export_hash']})." if status.get("export_hash") else "."))
    copy = status.get("copy_filter")
    lines.append(f"Copy filter: {copy['words']} words or {copy['chars']} characters copied in a row are rejected."
                 if copy else "Copy filter: off, this version has no index.")
    seen = status.get("candidates") or {}
    if seen.get("candidates"):
        lines.append(f"Best of {status['best_of']}: of {seen['candidates']} candidates so far, {seen['copies']} "
                     f"copied the posts, {seen.get('blocked', 0)} were blocked, {seen.get('forgotten', 0)} held a "
                     f"forgotten phrase, {seen['gibberish']} were gibberish and {seen['loops']} looped.")
    if quality := status.get("eval"):
        rejected = quality["candidates"]
        lines.append(f"At publish: {rejected['rejected']} of {rejected['candidates']} candidates rejected; copy "
                     f"rate {quality['copy_rate']:.1%} before the guard, {quality.get('copy_rate_served', 0):.1%} "
                     f"served, {quality['copy_rate_raw']:.1%} raw.")
        if quality.get("auc_dann") is not None:
            markov = quality.get("auc_markov_nocopy")
            lines.append(f"A classifier tells its posts from real ones with ROC AUC {quality['auc_dann']:.2f} (0.5: it "
                         f"cannot)" + (f"; markovify's copy-filtered posts: {markov:.2f}" if markov is not None else "")
                         + f". Made-up words: {quality['made_up_words']:.1%} (real posts: "
                         f"{quality['made_up_words_real']:.1%}).")
    if status.get("game"):
        lines.append(votes.render(status["game"]))
    if status.get("new_posts"):
        lines.append(f"{status['new_posts']} new post(s) of the person have arrived since this model was trained.")
    if status.get("converged_since") is not None:
        lines.append(f"Converged on this export since version {status['converged_since']}: scheduled runs skip "
                     f"until the export, the forget list or the training config changes.")
    if next_run:
        lines.append(f"Next scheduled retrain: {next_run}.")
    return "\n".join(lines)


def about(status: dict | None, *, voice: str, owner: str | None) -> str:
    """What dann is, for `/dann about` and the web page: a bot, whose posts it imitates, learned
    from what and up to when, and who runs it."""
    name = voice.strip()
    whose, their, them = (f"{name}'s", f"{name}'s", name) if name else ("one person's", "their", "them")
    lines = [(f"dann is a bot that imitates {whose} posts. It learned them from {their} own post export; "
              f"nothing it says was written or approved by {them}.")]
    until = _parse_time((status or {}).get("until"))
    trained = _parse_time((status or {}).get("trained_at"))
    if status is None or status.get("version") is None:
        lines.append("It has not been trained yet.")
    elif until:
        lines.append(f"The model it uses now (version {status['version']}) learned from posts up to "
                     f"{_day(until)}" + (f" and was trained on {_day(trained)}." if trained else "."))
    elif trained:
        lines.append(f"The model it uses now (version {status['version']}) was trained on {_day(trained)}.")
    lines.append(f"It is run by {owner}, who can pause it and make it forget things." if owner else
                 "Nobody is set as its owner (DANN_OWNER_IDS).")
    return "\n".join(lines)


def _day(moment: datetime.datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _parse_time(text) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
