"""Hyperparameters: what they are, their defaults, and the one function that resolves them.

Three frozen sections, saved inside every checkpoint:
- `ModelSpec`: the architecture without the vocabulary size, which is known only once the
  training posts are read (`spec.config(vocab_size)` gives lstm's ModelConfig);
- `TrainConfig`: the optimizer, the batches, the budget, the vocabulary and copy-filter settings;
- `SpeedConfig`: the kernel's speed knobs, which change how fast a step runs, not what it learns.

`resolve` builds a `RunConfig` from layers, each over the one before:

    default -> size (a small export) or device (a GPU) -> budget (many epochs in the budget)
            -> setting (DANN_TRAIN_MINUTES) -> file (a JSON file such as `dann tune` writes) -> flag

and records which layer set each field. `dann train`, `dann tune`, the trainer, `dann eval` and
`dann bench` all get their hyperparameters here.
"""

import dataclasses
import json
import logging
import types
import typing
from pathlib import Path

from lstm.errors import DannError
from lstm.model import ModelConfig

log = logging.getLogger("dann.config")


class ConfigError(DannError):
    """A hyperparameter that cannot be used: an unknown field, a bad value, an unreadable file."""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _of_kind(value, kind) -> bool:
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return _whole(value)
    return isinstance(value, kind)


def check_kinds(section) -> None:
    """Every field holds a value of its declared kind: a file's "fast" is no learning rate."""
    for field, hint in typing.get_type_hints(type(section)).items():
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        value = getattr(section, field)
        if not any(_of_kind(value, kind) for kind in kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise ConfigError(f"{field} must be {names}, not {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    hidden: int = 256  # defaults: the best measured for a 5-minute budget on a 2-core CPU
    layers: int = 1
    cell: str = "lstm"  # "lstm" or "gru"
    residual: bool = False  # add each layer's input to its output (layers 2..N)
    dropout: float = 0.0  # between layers and before the head, training only
    weight_drop: float = 0.0  # DropConnect on W_hh, training only (lstm/model.py)

    def __post_init__(self):
        check_kinds(self)
        if self.cell not in ("lstm", "gru"):
            raise ConfigError(f"cell must be 'lstm' or 'gru', not {self.cell!r}")
        if not (self.hidden >= 1 and self.layers >= 1):
            raise ConfigError(f"hidden and layers must be at least 1, not {self.hidden} and {self.layers}")
        for name in ("dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), not {getattr(self, name)}")

    def config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, **dataclasses.asdict(self))

    @classmethod
    def of(cls, config: ModelConfig) -> "ModelSpec":
        """The spec of a model that exists (a checkpoint's)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # small batches: more updates per second of CPU (docs/measurements.md)
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
    # "chars" (lstm/vocab.py), or "bpe": byte-level subwords trained on the export (lstm/bpe.py),
    # `bpe_vocab` of them. docs/fidelity.md#subwords compares the two.
    tokens: str = "chars"
    bpe_vocab: int = 1024
    seed: int = 0
    # The copy filter (lstm/copyindex.py) rejects generated text holding a run of this many words,
    # or this many characters, found verbatim in the corpus. Its index is built at training time.
    copy_words: int = 7
    copy_chars: int = 40
    # Serve the LSTM mixed with the n-gram of the training posts (trainer/mixture.py), the weight
    # fitted on the validation posts: docs/training.md has what it does to val loss and fidelity.
    ngram_mix: bool = True

    def __post_init__(self):
        check_kinds(self)
        if self.minutes is None and self.max_steps is None:
            raise ConfigError("give a time budget (minutes) or a step count (max_steps)")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be positive, not {self.minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, not {self.max_steps}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be between 0 and 0.5, not {self.val_fraction}")
        for name in ("batch_size", "seq_len", "min_char_count", "copy_words", "copy_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.learning_rate > 0 or not self.clip_norm > 0 or self.weight_decay < 0:
            raise ConfigError("learning_rate and clip_norm must be positive and weight_decay not negative")
        if self.rare_chars not in ("unk", "drop"):
            raise ConfigError(f"rare_chars must be 'unk' or 'drop', not {self.rare_chars!r}")
        if self.tokens not in ("chars", "bpe"):
            raise ConfigError(f"tokens must be 'chars' or 'bpe', not {self.tokens!r}")
        if not 260 <= self.bpe_vocab <= 65536:  # the 256 bytes and the 4 reserved ids come first
            raise ConfigError(f"bpe_vocab must be from 260 to 65536, not {self.bpe_vocab}")

    @property
    def budget_s(self) -> float | None:
        return self.minutes * 60 if self.minutes else None


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    # Time steps per iteration of the scans' loops: 16 on a GPU, 1 on a CPU (the device layer
    # sets it; docs/measurements.md has both). Results are the same either way.
    unroll: int = 1
    bf16: bool = False  # bfloat16 inputs to the recurrent matmuls, accumulated in float32

    def __post_init__(self):
        check_kinds(self)
        if not self.unroll >= 1:
            raise ConfigError(f"unroll must be a positive whole number, not {self.unroll}")

    @property
    def matmul_dtype(self) -> str | None:
        return "bfloat16" if self.bf16 else None


SECTIONS = {"model": ModelSpec, "train": TrainConfig, "speed": SpeedConfig}
BUDGET = ("minutes", "max_steps")  # the run's own, never part of a tuned file or a training signature

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


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: ModelSpec = ModelSpec()
    train: TrainConfig = TrainConfig()
    speed: SpeedConfig = SpeedConfig()
    # "section.field" -> the layer that set it; a field not named here is a default.
    sources: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)

    def source(self, section: str, field: str) -> str:
        return self.sources.get(f"{section}.{field}", "default")

    def given(self) -> dict:
        """{section: {field: value}} of every field some layer above the defaults set."""
        out = {name: {} for name in SECTIONS}
        for key in self.sources:
            section, field = key.split(".")
            out[section][field] = getattr(getattr(self, section), field)
        return out

    def describe(self) -> str:
        """One line for the log: each field not at its default, and who set it."""
        parts = [f"{key} {getattr(getattr(self, key.split('.')[0]), key.split('.')[1])} ({layer})"
                 for key, layer in sorted(self.sources.items())]
        return ", ".join(parts) or "all defaults"

    def signature(self) -> dict:
        """What, besides the data, decides the trained model: a change means retrain even on the
        same export. The budget is left out (a longer budget alone is no reason), and so is speed."""
        return {"train": tunable(self.train), "model": dataclasses.asdict(self.model)}

    def with_changes(self, layer: str, changes: dict) -> "RunConfig":
        """This config with `changes` ({section: {field: value}}) on top, recorded as set by `layer`."""
        return _build([(layer, changes)], self)

    def to_json(self) -> dict:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS} | {"sources": dict(self.sources)}

    @classmethod
    def from_json(cls, data: dict) -> "RunConfig":
        """As saved in a checkpoint. Fields this code does not know (from a newer version) are
        ignored; missing ones take their defaults."""
        sections = {}
        for name, kind in SECTIONS.items():
            known = {f.name for f in dataclasses.fields(kind)}
            sections[name] = kind(**{k: v for k, v in (data.get(name) or {}).items() if k in known})
        return cls(**sections, sources=dict(data.get("sources") or {}))


def tunable(train: TrainConfig) -> dict:
    """Every training field but the budget, which stays the run's own (DANN_TRAIN_MINUTES, flags)."""
    return {k: v for k, v in dataclasses.asdict(train).items() if k not in BUDGET}


def _build(layers: list[tuple[str, dict]], base: RunConfig | None = None) -> RunConfig:
    """Apply (layer name, {section: {field: value}}) in order over `base` (default: the defaults)."""
    base = base or RunConfig()
    values = {name: dataclasses.asdict(getattr(base, name)) for name in SECTIONS}
    sources = dict(base.sources)
    for layer, sections in layers:
        for section, fields in sections.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown section {section!r}; the sections are {', '.join(SECTIONS)}")
            for field, value in fields.items():
                if field not in values[section]:
                    raise ConfigError(f"unknown field {field!r} in {section!r}; the fields are "
                                      f"{', '.join(values[section])}")
                values[section][field] = value
                sources[f"{section}.{field}"] = layer
    built = {name: kind(**values[name]) for name, kind in SECTIONS.items()}
    return RunConfig(**built, sources=sources)


def budget_layer(chars: int | None, minutes: float | None, max_steps: int | None, gpu: bool,
                 base: "RunConfig") -> dict | None:
    """What the budget sets for an export of `chars` characters: dropout and weight drop, by how many
    epochs the run will see (its model at the device's rate for `minutes`, or `max_steps` batches of `base`).
    None when the run sees too few for it to matter, or the size layer regularises already."""
    if chars is None or chars < SMALL_EXPORT_CHARS:
        return None
    train_chars = chars * (1 - base.train.val_fraction)
    by_time = (GPU_CHARS_PER_S if gpu else CPU_CHARS_PER_S) * minutes * 60 if minutes else float("inf")
    by_steps = max_steps * base.train.batch_size * base.train.seq_len if max_steps else float("inf")
    epochs = min(by_time, by_steps) / train_chars
    for at_least, model in BUDGET_REGULARISATION:
        if epochs >= at_least:
            log.info("about %.0f epochs in the budget: unless set otherwise, %s", epochs, _flat({"model": model}))
            return {"model": model}
    return None


def resolve(*, chars: int | None, platform: str | None = None, minutes: float | None = None, file=None,
            flags: dict | None = None) -> RunConfig:
    """The hyperparameters for an export of `chars` characters (None: no export, as in `dann
    bench`) on `platform` (default: JAX's backend): the defaults, then the export's size or the
    device, then the budget (what the run's minutes or steps will see of the export), then
    `minutes` (the DANN_TRAIN_MINUTES setting), then `file`, then `flags` ({section: {field:
    value}})."""
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
    if minutes is not None:
        above.append(("setting", {"train": {"minutes": minutes}}))
    if file is not None:
        above.append(("file", read_file(file)))
    if flags:
        above.append(("flag", flags))
    try:
        # The budget in force is known only once every layer is read: the run's own minutes or
        # steps decide what the budget layer sets, under the layers above it.
        found = _build(layers + above)
        budget = budget_layer(chars, found.train.minutes, found.train.max_steps, gpu, found)
        return _build(layers + [("budget", budget)] + above) if budget else found
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
