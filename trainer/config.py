"""Hyperparameters: what they are, their defaults, and the one function that resolves them.

The sections themselves (`ModelSpec`, `TrainConfig`, `SpeedConfig`, `RunConfig`) are data in
lstm/schema.py, saved inside every checkpoint.

`resolve` builds a `RunConfig` from layers, each over the one before:

    default -> size (a small export) or device (a GPU) -> budget (many epochs in the budget)
            -> setting (DANN_TRAIN_MINUTES) -> file (a JSON file such as `dann tune` writes) -> flag

and records which layer set each field. `dann train`, `dann tune`, the trainer, `dann eval` and
`dann bench` all get their hyperparameters here.
"""

import json
import logging
from pathlib import Path

from lstm.schema import BUDGET, SECTIONS, ConfigError, RunConfig, build_config

log = logging.getLogger("dann.config")


# A small export overfits the default model within a few dozen steps and then loses to a smoothed
# n-gram. Strong dropout, weight drop on W_hh and small batches won there (docs/training.md). The
# plain defaults were chosen on 1M characters (Shakespeare).
SMALL_EXPORT_CHARS = 100_000
SMALL_EXPORT = {"model": {"dropout": 0.5, "weight_drop": 0.8},
                "train": {"learning_rate": 0.01, "batch_size": 8, "seq_len": 32}}
# On a GPU the plain defaults (chosen for a 2-core CPU) leave it idle (docs/measurements.md).
GPU = {"model": {"hidden": 512, "layers": 2}, "train": {"learning_rate": 3e-3, "batch_size": 64, "seq_len": 128}}
GPU_SPEED = {"speed": {"unroll": 16}}
# Characters per second the size or device layer's model trains at, roughly (docs/training.md):
# with the export's size and the budget they say how many epochs a run will see.
CPU_CHARS_PER_S = 45_000  # 1 x 256, batch 32 x 64, on 2 cores
GPU_CHARS_PER_S = 1_000_000  # 2 x 512, batch 64 x 128, on one H100
# A run that will see many epochs overfits before its budget ends, and then more minutes make it
# worse: dropout before the head, and past 80 epochs weight drop on W_hh too, let them keep
# helping (docs/training.md). (epochs at least, model fields), largest first.
BUDGET_REGULARISATION = ((80, {"dropout": 0.3, "weight_drop": 0.5}), (40, {"dropout": 0.25}), (25, {"dropout": 0.15}))
# On a CPU, a budget of this many epochs of the default 1 x 256 is better spent on a 1 x 512, which
# trains about 3.4 times slower but keeps improving where the narrower one has flattened out: on the
# realistic X archive it was ahead at 20 minutes (130 epochs) and well ahead at 60, and behind at 5
# (docs/training.md). Shakespeare at 20 minutes is about 60 epochs: it stays 1 x 256.
CPU_WIDER_FROM = 120
CPU_WIDER = {"hidden": 512}
# A GPU follows the same rule from its own defaults (2 x 512 at GPU_CHARS_PER_S): from as many epochs
# of them, 2 x 1024. Not measured on a GPU yet (docs/training.md).
GPU_WIDER = {"hidden": 1024}



def budget_layer(chars: int | None, minutes: float | None, max_steps: int | None, gpu: bool,
                 base: "RunConfig") -> dict | None:
    """What the budget sets for an export of `chars` characters: dropout and weight drop, by how many
    epochs the run will see (its model at the device's rate for `minutes`, or `max_steps` batches of
    `base`), and a wider model from CPU_WIDER_FROM epochs. None when the run sees too few
    for it to matter, or the size layer regularises already."""
    if chars is None or chars < SMALL_EXPORT_CHARS:
        return None
    train_chars = chars * (1 - base.train.val_fraction)
    by_time = (GPU_CHARS_PER_S if gpu else CPU_CHARS_PER_S) * minutes * 60 if minutes else float("inf")
    by_steps = max_steps * base.train.batch_size * base.train.seq_len if max_steps else float("inf")
    epochs = min(by_time, by_steps) / train_chars
    for at_least, model in BUDGET_REGULARISATION:
        if epochs >= at_least:
            if epochs >= CPU_WIDER_FROM:
                model = {**(GPU_WIDER if gpu else CPU_WIDER), **model}
            log.info("about %.0f epochs in the budget: unless set otherwise, %s", epochs, _flat({"model": model}))
            return {"model": model}
    return None


def resolve(*, chars: int | None, platform: str | None = None, minutes: float | None = None, file=None,
            flags: dict | None = None, recency_half_life_days: float | None = None) -> RunConfig:
    """The hyperparameters for an export of `chars` characters (None: no export, as in `dann
    bench`) on `platform` (default: JAX's backend): the defaults, then the export's size or the
    device, then the budget (what the run's minutes or steps will see of the export), then
    `minutes` and `recency_half_life_days` (the DANN_TRAIN_MINUTES and DANN_RECENCY_HALF_LIFE_DAYS
    settings), then `file`, then `flags` ({section: {field: value}})."""
    if platform is None:
        import jax

        platform = jax.default_backend()
    layers = []
    gpu = platform in ("gpu", "cuda", "rocm")
    if chars is not None and chars < SMALL_EXPORT_CHARS:
        layers.append(("size", SMALL_EXPORT))
        log.info("a small export (%d characters): unless set otherwise, %s", chars, _flat(SMALL_EXPORT))
    elif gpu:
        layers.append(("device", GPU))
        log.info("a GPU: unless set otherwise, %s", _flat(GPU))
    if gpu:
        layers.append(("device", GPU_SPEED))
    above = []
    setting = {k: v for k, v in (("minutes", minutes), ("recency_half_life_days", recency_half_life_days))
               if v is not None}
    if setting:
        above.append(("setting", {"train": setting}))
    if file is not None:
        above.append(("file", read_file(file)))
    if flags:
        above.append(("flag", flags))
    try:
        # The budget in force is known only once every layer is read: the run's own minutes or
        # steps decide what the budget layer sets, under the layers above it.
        found = build_config(layers + above)
        budget = budget_layer(chars, found.train.minutes, found.train.max_steps, gpu, found)
        return build_config(layers + [("budget", budget)] + above) if budget else found
    except ConfigError as error:
        where = f"train config {file}: " if file is not None else ""
        raise ConfigError(f"{where}{error}") from None


def _flat(layer: dict) -> str:
    return ", ".join(f"{k} {v}" for part in layer.values() for k, v in part.items())


def read_file(path) -> dict:
    """A hyperparameter file, {"model": {...}, "train": {...}, "speed": {...}} (any section may be
    left out): DANN_TRAIN_CONFIG's format, and what `dann tune` writes."""
    try:
        options = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"train config {path}: cannot be read ({error})") from None
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ConfigError(f'train config {path}: must be a JSON object such as {{"model": {{...}}, "train": {{...}}}}')
    for section in options:
        if section not in SECTIONS:
            raise ConfigError(f"train config {path}: unknown section {section!r}; the sections are "
                              f"{', '.join(SECTIONS)}")
    return options


def write_file(path, model: dict, train: dict) -> Path:
    """A config file of these model and training fields (the budget left out), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    train = {k: v for k, v in train.items() if k not in BUDGET}
    partial.write_text(json.dumps({"model": model, "train": train}, indent=2) + "\n")
    partial.replace(path)
    return path
