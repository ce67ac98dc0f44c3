"""The run record: what the trainer knows about a model, saved as JSON inside its checkpoint.

Readers (the serving layer, `dann status`, `dann eval`, the next run's warm start and promotion
gate) get it back with `RunRecord.of(checkpoint)`, typed, instead of picking keys out of a dict.
"""

import dataclasses

from lstm.checkpoint import Checkpoint
from trainer.config import ModelSpec, RunConfig
from trainer.data import Baselines


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
