"""Baselines for the training report: how good are models that need no training?

A validation loss means little on its own. Beside the LSTM's, the report shows two "week-one"
models fitted by counting the same training stream and scored on the same validation stream in
the same way (mean nats per predicted token, each token predicted from the tokens before it):

- a unigram (add-one smoothed token frequencies): the floor any model must clear;
- a character n-gram with interpolated modified Kneser-Ney smoothing: the strong classical model.
  An LSTM that does not beat it has learned nothing that counting could not.

Everything is vectorised numpy: an n-gram is one int64 key (its ids as digits in base vocab_size),
counted with np.unique and looked up with np.searchsorted, so a 1M-token stream takes seconds.
"""

import dataclasses

import numpy as np


def max_order(vocab_size: int) -> int:
    """The longest n-gram whose key fits in an int64: 9 for a vocabulary of 120, 7 for 256.
    Longer orders are refused rather than hashed, since a hash collision would break normalisation."""
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, not {vocab_size}")
    n = 1
    while vocab_size ** (n + 1) <= 2**63:
        n += 1
    return n


def unigram_val_loss(train, val, vocab_size: int) -> float:
    """Nats per token of val[1:] under add-one smoothed token frequencies of train."""
    train, val = _ids(train, vocab_size), _ids(val, vocab_size)
    p = (np.bincount(train, minlength=vocab_size) + 1) / (len(train) + vocab_size)
    return float(-np.log(p[val[1:]]).mean())


def ngram_val_loss(train, val, vocab_size: int, order: int) -> float:
    """Nats per token of val[1:] under an interpolated modified Kneser-Ney n-gram of train."""
    return NGramModel(train, vocab_size, order).val_loss(val)


def baselines(train, val, vocab_size: int, orders=range(2, 9)) -> dict:
    """The report's baselines: the unigram, and the best n-gram over `orders` with its order."""
    orders = [n for n in orders if n <= min(max_order(vocab_size), len(train))]
    # The order is chosen on val itself, which flatters the n-gram a little: the honest direction
    # for a baseline the LSTM has to beat.
    losses = {n: NGramModel(train, vocab_size, n, levels).val_loss(val) for n, levels in _fit(train, vocab_size, orders)}
    best = min(losses, key=losses.get)
    return {
        "unigram_val_loss": round(unigram_val_loss(train, val, vocab_size), 4),
        "ngram_val_loss": round(losses[best], 4),
        "ngram_order": best,
    }


class NGramModel:
    """A character n-gram, interpolated modified Kneser-Ney (Chen & Goodman 1998), down to uniform.

    p_j(w | h) = (c(h w) - D(c(h w)) + B(h) p_{j-1}(w | h')) / c(h), where h' is h without its
    oldest token, D has one value for counts 1, 2 and 3+ per level, and B(h) = the sum of D over
    the tokens seen after h, so the distribution sums to 1. Below the unigram level is uniform over
    the vocab, so no token is ever impossible. A context never seen in train (or reaching before the
    start of the stream) passes the lower order through unchanged.
    """

    def __init__(self, train, vocab_size: int, order: int, levels=None):
        """levels: already built by _fit (baselines() shares them across orders); normally left out."""
        self.vocab_size, self.order = vocab_size, order
        self.levels = levels if levels is not None else next(_fit(train, vocab_size, [order]))[1]

    def prob(self, context) -> np.ndarray:
        """p(w | context) for every w in the vocab, shape (vocab_size,)."""
        context = _ids(context, self.vocab_size)
        words = np.arange(self.vocab_size, dtype=np.int64)
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for j, level in enumerate(self.levels[: len(context) + 1]):
            h = 0
            for t in context[len(context) - j :]:
                h = h * self.vocab_size + int(t)
            p = level.interpolate(np.full(self.vocab_size, h, np.int64), h * self.vocab_size + words, p)
        return p

    def prob_rows(self, contexts: np.ndarray) -> np.ndarray:
        """p(w | context) for each row of `contexts` (B, order - 1) at once -> (B, vocab_size)."""
        contexts = np.asarray(contexts, np.int64).reshape(len(contexts), -1)
        rows, width = contexts.shape
        words = np.arange(self.vocab_size, dtype=np.int64)
        p = np.full((rows, self.vocab_size), 1.0 / self.vocab_size)
        for j, level in enumerate(self.levels[: width + 1]):
            h = np.zeros(rows, np.int64)
            for t in range(width - j, width):
                h = h * self.vocab_size + contexts[:, t]
            p = level.interpolate(np.repeat(h, self.vocab_size), (h[:, None] * self.vocab_size + words).ravel(),
                                  p.ravel()).reshape(rows, self.vocab_size)
        return p

    def log_probs(self, ids) -> np.ndarray:
        """ln p(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1, all positions at once."""
        ids = _ids(ids, self.vocab_size)
        p = np.full(max(len(ids) - 1, 0), 1.0 / self.vocab_size)
        for j, level in enumerate(self.levels[: len(ids)]):
            first = max(j, 1)  # the first position with j tokens of context
            grams = _keys(ids, self.vocab_size, j + 1)[first - j :]  # grams ending at positions first..
            p[first - 1 :] = level.interpolate(grams // self.vocab_size, grams, p[first - 1 :])
        return np.log(p)

    def val_loss(self, val) -> float:
        """Mean nats per token of val[1:], as the LSTM's val loss is measured."""
        if len(val) < 2:
            raise ValueError("val needs at least 2 tokens: the first is only context")
        return float(-self.log_probs(val).mean())


def _fit(train, vocab_size: int, orders):
    """(order, levels) for each of `orders`, ascending. The levels below the top are the same at
    every order, so fitting all the orders costs what fitting the highest does: one np.unique of
    the train stream per order."""
    orders = sorted(set(orders))
    if not orders or orders[0] < 1 or orders[-1] > max_order(vocab_size):
        raise ValueError(f"orders must be in 1..{max_order(vocab_size)} for vocab_size {vocab_size}, not {orders}")
    train = _ids(train, vocab_size)
    if len(train) < orders[-1]:
        raise ValueError(f"a train stream of {len(train)} tokens has no {orders[-1]}-grams")
    lower = []  # continuation-count levels for context lengths 0, 1, ...
    for n in range(1, orders[-1] + 1):
        grams, counts = np.unique(_keys(train, vocab_size, n), return_counts=True)
        if n > 1:
            # Kneser-Ney: a lower order only matters when the longer context is rare or new, so it
            # counts how many different tokens precede a gram, not how often the gram occurs.
            suffixes, preceders = np.unique(grams % vocab_size ** (n - 1), return_counts=True)
            lower.append(_Level.build(suffixes, preceders, vocab_size))
        if n in orders:
            yield n, [*lower, _Level.build(grams, counts, vocab_size)]


@dataclasses.dataclass
class _Level:
    """The counts for one context length, sorted by key for np.searchsorted."""

    grams: np.ndarray  # keys of (context, next)
    counts: np.ndarray  # raw counts at the top level, continuation counts below
    contexts: np.ndarray  # keys of the contexts seen, = grams // vocab_size, deduplicated
    totals: np.ndarray  # per context: the sum of its counts
    backoff: np.ndarray  # per context: the count mass taken by discounting, handed to the lower order
    discounts: np.ndarray  # D for counts 0, 1, 2, 3+

    @classmethod
    def build(cls, grams, counts, vocab_size: int) -> "_Level":
        contexts, first = np.unique(grams // vocab_size, return_index=True)  # grams are sorted by context
        discounts = _discounts(counts)
        totals = np.add.reduceat(counts, first)
        backoff = np.add.reduceat(discounts[np.minimum(counts, 3)], first)
        return cls(grams, counts, contexts, totals, backoff, discounts)

    def interpolate(self, contexts, grams, lower) -> np.ndarray:
        """p at this level for each (context, gram) key pair, given p at the level below."""
        i, seen = _find(self.contexts, contexts)
        g, found = _find(self.grams, grams)
        count = np.where(found, self.counts[g], 0)
        p = (count - self.discounts[np.minimum(count, 3)] + self.backoff[i] * lower) / self.totals[i]
        return np.where(seen, p, lower)


def _discounts(counts) -> np.ndarray:
    """D for counts 0, 1, 2 and 3+, from the counts of counts (Chen & Goodman's estimate).
    The estimate keeps D(c) <= c, so no discounted count goes negative."""
    n1, n2, n3, n4 = (np.count_nonzero(counts == k) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = np.array([0.0, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
        if np.all(d[1:] > 0):  # each D must be > 0 so every seen context leaves mass for unseen tokens
            return d
    return np.array([0.0, 0.5, 1.0, 1.5])  # tiny or degenerate texts (KenLM's fallback)


def _keys(ids: np.ndarray, vocab_size: int, length: int) -> np.ndarray:
    """The key of every `length`-gram in ids, in order: key[s] encodes ids[s : s + length]."""
    count = max(len(ids) - length + 1, 0)
    keys = ids[:count].copy()
    for i in range(1, length):
        keys = keys * vocab_size + ids[i : i + count]
    return keys


def _find(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query in sorted_keys (clipped to a valid index) and whether it is there."""
    i = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return i, sorted_keys[i] == queries


def _ids(ids, vocab_size: int) -> np.ndarray:
    ids = np.asarray(ids, np.int64).ravel()
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must be in [0, {vocab_size})")
    return ids


def table_levels(model: NGramModel, min_total: int = 1) -> list[dict]:
    """The model's levels as lstm/ngram.py's NGramTable.build takes them: per context length j,
    the contexts as token rows (oldest first), and per context its entries (token, a(h, w)) and
    b(h). Contexts of 2 or more tokens whose counts sum to less than `min_total` are left out
    (pruned): the lower orders answer for them, as for a context never seen."""
    v = model.vocab_size
    out = []
    for j, level in enumerate(model.levels):
        owner = np.searchsorted(level.contexts, level.grams // v)  # each gram's context index
        keep = level.totals >= (min_total if j >= 2 else 1)
        kept_grams = keep[owner]
        contexts = level.contexts[keep]
        digits = (contexts[:, None] // v ** np.arange(j - 1, -1, -1)) % v if j else np.zeros((len(contexts), 0))
        counts = level.counts[kept_grams]
        totals = level.totals[owner[kept_grams]]
        out.append({
            "contexts": digits.astype(np.int32),
            "offsets": np.concatenate([[0], np.cumsum(np.bincount(owner[kept_grams], minlength=len(keep))[keep])]),
            "tokens": (level.grams[kept_grams] % v).astype(np.int32),
            "values": (counts - level.discounts[np.minimum(counts, 3)]) / totals,
            "backoff": level.backoff[keep] / level.totals[keep],
        })
    return out
