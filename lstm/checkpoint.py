"""Self-describing checkpoints: numbered versions in one orbax directory.

Each version holds up to eight items:
- `params`: the model's parameters (an nnx.State),
- `meta`: JSON with the model config, the vocabulary and what the trainer knows about the run
  (data hash, steps, val loss, timestamp),
- `copy`: the copy filter's index of the training corpus (lstm/copyindex.py), with its settings
  in `meta`; versions written before it existed have none and are served without the filter,
- `lexicon`: the words of the training posts (lstm/lexicon.py), which the sampler keeps to; versions
  written before it existed have none and spell freely,
- `ngram`: the n-gram table the sampler mixes in (lstm/ngram.py), with its order and weight in
  `meta`; versions without one serve the LSTM alone,
- `posts` and `postindex`: the posts that may be shown to anyone, with their source ids, and their
  word index (lstm/postindex.py): what "why did you say that?" and the game read; versions without
  them can answer neither,
- `opt`: the optimizer state, only in versions written by a trainer that may resume.

Loading needs nothing but the directory: read `meta`, rebuild the abstract model from its config,
then restore `params` into it. orbax writes each version to a temporary directory and renames it
when complete, so a reader never sees a half-written version; a version that is damaged anyway is
skipped with a log line and the next older one is used.
"""

import dataclasses
import logging
import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx

from lstm.bpe import KIND as BPE
from lstm.bpe import BpeVocab
from lstm.copyindex import CopyIndex
from lstm.errors import DannError
from lstm.lexicon import Lexicon
from lstm.model import CharRNN, ModelConfig
from lstm.ngram import NGramTable
from lstm.postindex import PostIndex
from lstm.vocab import Vocab

log = logging.getLogger("dann.checkpoint")


class NoCheckpoint(DannError):
    """The directory holds no loadable checkpoint."""


@dataclasses.dataclass
class Checkpoint:
    version: int
    model: CharRNN
    vocab: Vocab
    meta: dict  # everything in the `meta` item; meta["info"] is what the trainer recorded
    opt_state: object = None
    copy_index: CopyIndex | None = None
    lexicon: Lexicon | None = None
    ngram: NGramTable | None = None
    posts: PostIndex | None = None

    @property
    def info(self) -> dict:
        """What the trainer recorded about the run (lstm/schema.py's RunRecord, as JSON)."""
        return self.meta.get("info", {})

    @property
    def has_opt(self) -> bool:
        """Whether the version carries optimizer state (a run's own saves do; published ones do not)."""
        return bool(self.meta.get("has_opt", self.info.get("has_opt")))


def _manager(directory, read_only: bool, keep: int | None = None) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        read_only=read_only,
        create=not read_only,
        enable_async_checkpointing=False,
        cleanup_tmp_directories=not read_only,  # a writer removes what a killed save left behind
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def abstract_model(config: ModelConfig) -> CharRNN:
    """The model's structure with shapes but no values: the target a restore fills in."""
    return nnx.eval_shape(lambda: CharRNN(config, rngs=nnx.Rngs(0)))


def _on_this_device(abstract):
    """Restore targets placed on this process's first device. Without a sharding orbax restores
    onto the devices that saved the checkpoint, and refuses when they are not all here: a model
    trained data-parallel on 4 GPUs must load in the 1-device CPU bot."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract)


def save(directory, version: int, model: CharRNN, vocab: Vocab, info: dict, opt_state=None, keep: int = 3,
         copy_index: CopyIndex | None = None, lexicon: Lexicon | None = None, ngram: NGramTable | None = None,
         posts: PostIndex | None = None):
    """Write `version` and return when it is complete on disk. Keeps the newest `keep` versions."""
    meta = {"model": dataclasses.asdict(model.config), "vocab": vocab.to_json(), "info": info,
            "has_opt": opt_state is not None}
    items = {"params": ocp.args.StandardSave(nnx.state(model))}
    if copy_index is not None:
        meta["copy"] = copy_index.settings()
        items["copy"] = ocp.args.StandardSave(copy_index.arrays())
    if lexicon is not None:
        meta["lexicon"] = len(lexicon.words)
        items["lexicon"] = ocp.args.JsonSave(lexicon.to_json())
    if ngram is not None:
        meta["ngram"] = ngram.settings()
        items["ngram"] = ocp.args.StandardSave(ngram.arrays())
    if posts is not None and len(posts) and len(posts.words):  # orbax refuses zero-size arrays
        meta["posts"] = len(posts)
        items["posts"] = ocp.args.JsonSave(posts.to_json())
        items["postindex"] = ocp.args.StandardSave(posts.arrays())
    items["meta"] = ocp.args.JsonSave(meta)
    if opt_state is not None:
        items["opt"] = ocp.args.StandardSave(opt_state)
    with _manager(directory, read_only=False, keep=keep) as manager:
        manager.save(version, args=ocp.args.Composite(**items))


def versions(directory) -> list[int]:
    """Version numbers present, newest first. A missing directory has none.

    A directory listing, not a CheckpointManager: the service polls this, and a manager reads every
    version's metadata on a thread pool each time, which competes for the GIL with the event loop.
    Orbax writes `<version>.orbax-checkpoint-tmp` and renames it to `<version>` when complete, so
    the all-digit names are exactly the finished versions."""
    try:
        names = [entry.name for entry in os.scandir(directory) if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(name) for name in names if name.isascii() and name.isdigit()), reverse=True)


def next_version(directory) -> int:
    """The number the next save into `directory` takes: one past the newest present. The only
    place version numbers are assigned, for the trainer's runs and its publishing alike."""
    present = versions(directory)
    return present[0] + 1 if present else 1


def read_meta(directory, version: int) -> dict:
    with _manager(directory, read_only=True) as manager:
        return manager.restore(version, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def load_version(directory, version: int, opt_target=None) -> Checkpoint:
    """Load one version; raises if it is missing or damaged. `opt_target` is an abstract optimizer
    state of the right structure, given only by a trainer that resumes."""
    meta = read_meta(directory, version)
    config = ModelConfig(**meta["model"])
    graphdef, abstract_params = nnx.split(abstract_model(config))
    items = {"params": ocp.args.StandardRestore(_on_this_device(abstract_params))}
    if opt_target is not None:
        items["opt"] = ocp.args.StandardRestore(_on_this_device(opt_target))
    if "copy" in meta:
        items["copy"] = ocp.args.StandardRestore()  # numpy arrays, as saved
    if "lexicon" in meta:
        items["lexicon"] = ocp.args.JsonRestore()
    if "ngram" in meta:
        items["ngram"] = ocp.args.StandardRestore()
    if "posts" in meta:
        items["posts"] = ocp.args.JsonRestore()
        items["postindex"] = ocp.args.StandardRestore()
    with _manager(directory, read_only=True) as manager:
        restored = manager.restore(version, args=ocp.args.Composite(**items))
    model = nnx.merge(graphdef, restored["params"])
    vocab = vocab_from_json(meta["vocab"])
    if len(vocab) != config.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} symbols but the model expects {config.vocab_size}")
    copy_index = CopyIndex.from_arrays(restored["copy"], meta["copy"]) if "copy" in meta else None
    lexicon = Lexicon.of_words(restored["lexicon"], vocab) if "lexicon" in meta else None
    ngram = NGramTable.from_arrays(restored["ngram"], meta["ngram"]) if "ngram" in meta else None
    posts = PostIndex.from_saved(restored["posts"], restored["postindex"]) if "posts" in meta else None
    return Checkpoint(version, model, vocab, meta, restored.get("opt") if opt_target is not None else None,
                      copy_index, lexicon, ngram, posts)


def load_latest(directory, opt_target=None, newer_than: int = -1) -> Checkpoint:
    """The newest version that loads, skipping damaged ones with a warning.

    Raises NoCheckpoint when none loads (or none is newer than `newer_than`).
    """
    found = [v for v in versions(directory) if v > newer_than]
    for version in found:
        try:
            return load_version(directory, version, opt_target)
        except Exception as error:  # any damage: a missing item, bad JSON, wrong shapes, a race
            log.warning("skipping checkpoint version %d in %s: %s", version, directory, _one_line(error))
    if newer_than >= 0:
        raise NoCheckpoint(f"no loadable checkpoint newer than version {newer_than} in {directory}")
    if found:
        raise NoCheckpoint(f"no loadable checkpoint in {directory}: all {len(found)} versions are damaged")
    raise NoCheckpoint(f"no checkpoint in {directory}: train one first with `dann train` or `dann demo`")


def vocab_from_json(data: dict) -> Vocab | BpeVocab:
    """Characters (lstm/vocab.py), or subwords (lstm/bpe.py) for a model trained with tokens="bpe"."""
    return BpeVocab.from_json(data) if data.get("kind") == BPE else Vocab.from_json(data)


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
