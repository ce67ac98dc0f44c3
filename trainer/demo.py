"""`dann demo`: train on the Shakespeare that ships with the package and draw a few samples, as served."""

import dataclasses

import jax

from dann.voice.blocklist import Blocklist
from lstm.sample import generate
from trainer.bench_corpus import SHAKESPEARE
from trainer.config import resolve
from trainer.data import prepare
from trainer.exports import read_corpus
from trainer.lock import TrainerLock
from trainer.train import latest_start, train

CORPUS = SHAKESPEARE
TEMPERATURES = (0.25, 0.4, 0.7, 1.0)


@dataclasses.dataclass(frozen=True)
class Demo:
    summary: dict  # the run's, as `dann train` prints it
    samples: dict  # temperature -> one 300-character text


def device_name() -> str:
    return f"{jax.default_backend().upper()} ({jax.device_count()} device{'s' if jax.device_count() > 1 else ''})"


def train_demo(checkpoint_dir, minutes: float, *, known_words: bool = True) -> Demo:
    """Train (or continue) the demo model in `checkpoint_dir` for `minutes`, then draw one text at
    each of TEMPERATURES with the n-gram mixture and, with `known_words`, the plays' words only."""
    # The trainer's lock while it trains (DANN_CHECKPOINT_DIR may be the trainer's own directory);
    # serving the page afterwards only reads.
    with TrainerLock(checkpoint_dir, "dann demo"):
        corpus = read_corpus(CORPUS)
        config = resolve(chars=corpus.chars, flags={"train": {"minutes": minutes}})
        data = prepare(corpus, config.train, blocklist=Blocklist.default())
        result = train(data, config, checkpoint_dir, start=latest_start(checkpoint_dir, data, config))
    lexicon = data.lexicon if known_words else None
    samples = {temp: generate(result.model, result.vocab, [""], temperature=temp, max_chars=300, seed=1,
                              lexicon=lexicon, ngram=result.ngram)[0][0] for temp in TEMPERATURES}
    return Demo({**result.summary(), "version": result.version}, samples)
