"""The served model: the LSTM mixed with the n-gram, and how it is scored.

p(w | h) = (1 - weight) p_lstm(w | h) + weight p_ngram(w | h). The n-gram is the Kneser-Ney model
the baselines count (trainer/baselines.py), of the order that scored best on the validation posts,
as a table the sampler reads on the device (lstm/ngram.py). The weight minimises the mixture's
loss on the validation posts; the loss is convex in it, so bisection on its derivative finds it.
"""

import dataclasses
import logging

import numpy as np

from lstm.ngram import NGramTable
from trainer.baselines import NGramModel, table_levels

log = logging.getLogger("dann.mixture")

MAX_TABLE_BYTES = 96 << 20  # the n-gram's cap in a checkpoint (and in a bot's memory)


def build_table(train: np.ndarray, vocab_size: int, order: int) -> NGramTable:
    """The n-gram of `order` counted on the training stream, pruned (contexts of 2 or more tokens
    seen fewer times) only as far as needed to fit MAX_TABLE_BYTES."""
    model = NGramModel(train, vocab_size, order)
    for min_total in (1, 2, 3, 5, 8, 13, 21, 34):
        table = NGramTable.build(table_levels(model, min_total), vocab_size)
        if table.nbytes <= MAX_TABLE_BYTES:
            break
    log.info("n-gram table: order %d, %d contexts, %.1f MB%s", order, len(table.fingerprints), table.nbytes / 1e6,
             f", contexts seen under {min_total} times pruned" if min_total > 1 else "")
    return table


def fit_weight(lstm_logp: np.ndarray, ngram_logp: np.ndarray) -> tuple[float, float]:
    """The weight in [0, 1] that minimises the mixture's mean loss on these targets, and that loss
    (nats per token). Each argument is ln p of the same targets under one model."""
    a, b = np.exp(lstm_logp), np.exp(ngram_logp)

    def slope(w):  # d/dw of the mean loss; increasing in w
        return -np.mean((b - a) / ((1 - w) * a + w * b))

    low, high = 0.0, 1.0
    if slope(0.0) >= 0:
        high = 0.0
    elif slope(1.0) <= 0:
        low = 1.0
    for _ in range(40 if low < high else 0):
        mid = (low + high) / 2
        low, high = (mid, high) if slope(mid) < 0 else (low, mid)
    weight = (low + high) / 2
    return weight, float(-np.mean(np.log((1 - weight) * a + weight * b)))


@dataclasses.dataclass(frozen=True)
class Scores:
    """A model on the validation posts, in nats per character."""

    lstm: float  # the LSTM alone
    served: float  # what is served: the mixture, or the LSTM alone without a table
    accuracy: float  # the LSTM's next-token accuracy
    weight: float | None  # the n-gram's weight in the mixture, None without one


def mix(lstm_logp: np.ndarray, positions: np.ndarray, accuracy: float, ngram_logp: np.ndarray | None, scale: float,
        weight: float | None = None) -> Scores:
    """Scores from the LSTM's ln p at `positions` of the validation stream and the n-gram's at every
    position 1.. (None: no mixture). With `weight` given it is used, else fitted."""
    lstm = float(-np.mean(lstm_logp)) * scale
    if ngram_logp is None:
        return Scores(lstm, lstm, accuracy, None)
    ngram = ngram_logp[positions - 1]
    if weight is None:
        weight, served = fit_weight(lstm_logp, ngram)
    else:
        served = float(-np.mean(np.log((1 - weight) * np.exp(lstm_logp) + weight * np.exp(ngram))))
    return Scores(lstm, served * scale, accuracy, weight)
