"""`dann tune` on an export: tune it (trainer/tune.py) and write the best config where the trainer
reads it, or where asked."""

import contextlib
import json
from pathlib import Path

from dann.voice.forget import forget_list
from trainer.config import resolve, write_file
from trainer.lock import TrainerLock
from trainer.retrain import config_file, read_export, tuned_path
from trainer.tune import tune


def tune_export(path, settings, *, minutes: float | None, steps: int | None = None, out=None, config=None,
                include_dms: bool = False) -> dict:
    """`dann tune`: tune on the export at `path` for `minutes` (or `steps` per trial) and write the best
    config to `out` (default: beside the checkpoints, where the trainer reads it). The result of
    `tune`, with "written" (the file) and "use" (how the trainer gets to read it)."""
    checkpoint_dir = settings.checkpoint_dir
    default_out = tuned_path(checkpoint_dir)
    out = Path(out or default_out)
    # A config beside the checkpoints is the trainer's to read, and its auto-retuner writes the
    # same file: the trainer's lock, taken first, so that a refusal costs no minutes of trials.
    beside = out.resolve().parent == Path(checkpoint_dir).resolve()
    with (TrainerLock(checkpoint_dir, "dann tune", instead="an --out file elsewhere") if beside
          else contextlib.nullcontext()):
        corpus = read_export(path, forget_list(settings), include_dms=include_dms)
        run = resolve(chars=corpus.chars, minutes=settings.train_minutes, file=config or config_file(settings))
        result = tune(corpus, minutes, run, steps=steps)
        out = write_file(out, result["best"]["model"], result["best"]["train"])
    use = ("the trainer uses it from its next run" if out == default_out and settings.train_config is None
           else f"set DANN_TRAIN_CONFIG={out} for the trainer to use it")
    return {**result, "written": str(out), "use": use}


def render(result: dict) -> str:
    """`tune_export`'s result as `dann tune` prints it: one line per trial, then the verdict."""
    lines = []
    for trial in result["trials"]:
        change = {k: v for part in trial["change"].values() for k, v in part.items()}
        lines.append(f"  {trial['val_loss']:.4f}  {json.dumps(change) if change else 'current config'}, "
                     f"seq {trial['train']['seq_len']}, lr {trial['train']['learning_rate']:.2g} ({trial['steps']} steps)")
    best, current, out = result["best"], result["current"], result["written"]
    each = (f"{result['seconds_per_trial']:g} s" if result["seconds_per_trial"] is not None
            else f"{result['steps_per_trial']} steps a learning rate")
    if result["current_is_best"]:
        lines.append(f"The current config was best (val loss {current['val_loss']:.4f} after "
                     f"{each} per architecture); written unchanged to {out}")
    else:
        lines.append(f"Best: val loss {best['val_loss']:.4f} against {current['val_loss']:.4f} for the current config, "
                     f"{each} per architecture. Written to {out}; {result['use']}.")
    return "\n".join(lines)
