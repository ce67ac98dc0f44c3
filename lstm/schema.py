"""What a checkpoint says about its model, as data: the hyperparameters and the run record.

Three frozen hyperparameter sections, saved inside every checkpoint:
- `ModelSpec`: the architecture without the vocabulary size, which is known only once the
  training posts are read (`spec.config(vocab_size)` gives lstm's ModelConfig);
- `TrainConfig`: the optimizer, the batches, the budget, the vocabulary and copy-filter settings;
- `SpeedConfig`: the kernel's speed knobs, which change how fast a step runs, not what it learns.

`RunConfig` holds the three and which layer set each field; the trainer's resolver
(trainer/config.py) decides the values. `RunRecord` is what the trainer knows about a model, saved
as JSON inside its checkpoint: readers (the voice, `dann status`, `dann eval`, the next run's warm
start and promotion gate) get it back with `RunRecord.of(checkpoint)`, typed, instead of picking
keys out of a dict. Everything here is plain data, so every layer above lstm may read it.
"""

import dataclasses
import types
import typing

from lstm.checkpoint import Checkpoint
from lstm.errors import DannError
from lstm.model import ModelConfig


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


def flag(default, help: str | None = None, *, choices: tuple | None = None, positive: bool = False,
         alias: str | None = None):
    """A field `dann train` also takes as a flag (dann/cli.py builds them from this metadata):
    --field-name, of the field's type, with `help`, `choices`, `positive` values only, and `alias`."""
    return dataclasses.field(default=default, metadata={"flag": {"help": help, "choices": choices,
                                                                 "positive": positive, "alias": alias}})


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    hidden: int = flag(256, positive=True)  # defaults: the best measured for a 5-minute budget on a 2-core CPU
    layers: int = flag(1, positive=True)
    cell: str = flag("lstm", choices=("lstm", "gru"))
    residual: bool = flag(False)  # add each layer's input to its output (layers 2..N)
    dropout: float = flag(0.0)  # between layers and before the head, training only
    weight_drop: float = flag(0.0, "DropConnect on W_hh, training only (small exports)")  # lstm/model.py

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
    batch_size: int = flag(32, positive=True)  # small batches: more updates per second of CPU (docs/measurements.md)
    seq_len: int = flag(64, positive=True)
    learning_rate: float = flag(6e-3, positive=True, alias="--lr")
    warmup_steps: int = flag(20)
    min_lr_ratio: float = 0.1
    weight_decay: float = flag(0.01)
    clip_norm: float = 1.0
    minutes: float | None = 5.0  # stop at whichever of minutes / max_steps comes first
    max_steps: int | None = None
    eval_every: int | None = flag(None, positive=True)  # steps between evaluations; None: every 500, or every epoch if sooner
    stateful: bool = flag(False, "carry state across windows")  # carry the hidden state across consecutive windows (truncated BPTT)
    val_fraction: float = 0.1
    min_char_count: int = flag(5, "rarer characters are unknown", positive=True)  # rarer characters become <unk> (or are dropped, see rare_chars)
    rare_chars: str = flag("unk", "map rare characters to <unk>, or drop them", choices=("unk", "drop"))
    # "chars" (lstm/vocab.py), or "bpe": byte-level subwords trained on the export (lstm/bpe.py),
    # `bpe_vocab` of them. docs/fidelity.md#subwords compares the two.
    tokens: str = flag("chars", "characters (default), or byte-level BPE subwords trained on the export",
                       choices=("chars", "bpe"))
    bpe_vocab: int = flag(1024, "subwords in a BPE vocabulary (default 1024)", positive=True)
    seed: int = flag(0)
    # Weight the training windows toward newer posts: a post this many days older than the newest
    # is drawn half as often (trainer/batches.py). None: every window alike. Posts without a time
    # count as the newest.
    recency_half_life_days: float | None = flag(None, "a post this many days older than the newest is trained on "
                                                      "half as often (default: off)", positive=True)
    # The copy filter (lstm/copyindex.py) rejects generated text holding a run of this many words,
    # or this many characters, found verbatim in the corpus. Its index is built at training time.
    copy_words: int = 7
    copy_chars: int = 40
    # Serve the LSTM mixed with the n-gram of the training posts (trainer/mixture.py), the weight
    # fitted on the validation posts: docs/training.md has what it does to val loss and fidelity.
    ngram_mix: bool = flag(True, "serve the LSTM mixed with the export's n-gram (default: on)")

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
        if self.recency_half_life_days is not None and not self.recency_half_life_days > 0:
            raise ConfigError(f"recency_half_life_days must be above 0, not {self.recency_half_life_days}")
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
    unroll: int = flag(1, "time steps per scan-loop iteration (default: 1 on a CPU, 16 on a GPU)", positive=True)
    bf16: bool = flag(False, "bfloat16 recurrent matmuls (float32 accumulation)")  # bfloat16 inputs to the recurrent matmuls, accumulated in float32

    def __post_init__(self):
        check_kinds(self)
        if not self.unroll >= 1:
            raise ConfigError(f"unroll must be a positive whole number, not {self.unroll}")

    @property
    def matmul_dtype(self) -> str | None:
        return "bfloat16" if self.bf16 else None


SECTIONS = {"model": ModelSpec, "train": TrainConfig, "speed": SpeedConfig}
BUDGET = ("minutes", "max_steps")  # the run's own, never part of a tuned file or a training signature


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
        return build_config([(layer, changes)], self)

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


def build_config(layers: list[tuple[str, dict]], base: RunConfig | None = None) -> RunConfig:
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



@dataclasses.dataclass(frozen=True)
class Baselines:
    """What models that need no training score on the same validation text (trainer/baselines.py)."""

    unigram_val_loss: float
    ngram_val_loss: float
    ngram_order: int


@dataclasses.dataclass(frozen=True)
class RunRecord:
    data_hash: str  # of exactly what training saw (Corpus.data_hash), to recognise an unchanged export
    format: str  # the export's format, as `dann corpus --stats` names it
    records: int
    posts: int
    replies: int
    median_chars: dict  # {"post": int | None, "reply": int | None}: best-of-n prefers lengths near these
    config: RunConfig
    baselines: Baselines | None
    steps: int  # optimizer steps the model has had, over every run it was warm-started through
    val_loss: float  # served: the LSTM mixed with the n-gram when ngram_weight is set, else the LSTM alone
    val_acc: float
    trained_at: str  # ISO-8601, UTC: when this model was evaluated as the run's best
    until: str | None = None  # ISO-8601: the newest post it was trained on, when the export has times
    forget_digest: str = ""  # the forget list the corpus was cleaned with: a new one means retraining
    # val_loss is in nats per character; a subword model's per token is val_loss / tokens_per_char.
    tokens_per_char: float = 1.0
    # {"post": [...], "reply": [...]}: the 0th, 5th, ..., 100th percentile of the training posts'
    # lengths in characters. Best-of-n draws each text's target length from them.
    lengths: dict = dataclasses.field(default_factory=dict)
    lstm_val_loss: float | None = None  # the LSTM alone (None in versions from before the mixture: val_loss)
    ngram_weight: float | None = None  # the n-gram's weight in the served mixture; None: not mixed
    train_seconds: float = 0.0  # training time, over every run it was warm-started through
    sources: dict = dataclasses.field(default_factory=dict)  # posts by where they came from ("export:NAME", "mastodon"…)
    # Set when the trainer publishes it:
    served_val_loss_before: float | None = None  # the model it replaced, on the same validation posts
    report: str | None = None  # the run's report folder, relative to the checkpoint directory
    eval: dict | None = None  # `dann eval`'s numbers for this model, measured at publish time

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict, model: ModelSpec | None = None) -> "RunRecord":
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        fields["config"] = RunConfig.from_json(data.get("config") or {"model": dataclasses.asdict(model or ModelSpec())})
        fields["baselines"] = Baselines(**data["baselines"]) if data.get("baselines") else None
        return cls(**fields)

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> "RunRecord":
        """The record saved in `checkpoint`. A version saved before records were typed keeps its
        facts in a flat dict; they are read into the same fields."""
        info = dict(checkpoint.info)
        model = ModelSpec.of(checkpoint.model.config)
        if "config" not in info:  # the flat layout: baselines at the top, the train config under "train"
            info["config"] = {"model": dataclasses.asdict(model), "train": info.get("train") or {}}
            if info.get("ngram_val_loss") is not None:
                info["baselines"] = {k: info.get(k) for k in ("unigram_val_loss", "ngram_val_loss", "ngram_order")}
        defaults = {"data_hash": "", "format": "unknown", "records": 0, "posts": 0, "replies": 0,
                    "median_chars": {}, "steps": 0, "val_loss": float("nan"), "val_acc": float("nan"),
                    "trained_at": ""}
        return cls.from_json({**defaults, **info}, model)
