"""Does it pass for the person? A classifier two-sample test, and the generators it compares.

A discriminator learns to tell the person's held-out posts from generated ones: character
n-grams (2 to 5, within word boundaries) and words (1 and 2), TF-IDF weighted, into a logistic
regression, scored by ROC AUC over stratified cross-validation (every text is scored by a model
that did not see it). 0.5 means the two sets cannot be told apart; 1.0, always. This is the
"classifier two-sample test" (Lopez-Paz & Oquab 2017), and what a reader does when a post "does
not sound like them".

The same test runs, on the same real posts, for
- dann's served posts (best of n, after every filter);
- markovify (the word-level Markov chain most "ebooks" bots use), trained on the same training
  split, with and without the copy filter (a markovify post that copies 7 words or 40 characters
  of a training post is left out, as dann's own are);
- dann's own character n-gram (the Kneser-Ney baseline of trainer/baselines.py), sampled.

Beside the AUCs: the share of generated words that never occur in the person's posts
(`made_up_words`; the real held-out posts' own share is the floor, since people coin words too),
and the length distribution against the real one.
"""

import math
import re
from collections.abc import Callable

import numpy as np

from lstm.copyindex import CopyIndex
from lstm.vocab import EOS, KIND_IDS, Vocab
from trainer.baselines import NGramModel

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters only: numbers and handles are not made-up words
MIN_TEXTS = 10  # per side; with fewer the cross-validated AUC is noise
FOLDS = 5


def discriminator_auc(real: list[str], generated: list[str], seed: int = 0) -> float | None:
    """Cross-validated ROC AUC of telling `generated` from `real` (0.5: indistinguishable), or None
    when either side has fewer than MIN_TEXTS texts."""
    real = [t for t in real if t.strip()]
    generated = [t for t in generated if t.strip()]
    if min(len(real), len(generated)) < MIN_TEXTS:
        return None
    # Imported here: scikit-learn takes a second or two to import, which only this test needs.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union

    texts = real + generated
    labels = np.array([0] * len(real) + [1] * len(generated))
    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
    )
    classifier = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))
    folds = StratifiedKFold(n_splits=min(FOLDS, min(len(real), len(generated))), shuffle=True, random_state=seed)
    scores = cross_val_predict(classifier, texts, labels, cv=folds, method="predict_proba")[:, 1]
    return round(float(roc_auc_score(labels, scores)), 4)


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


def made_up_words(texts: list[str], known: set[str]) -> float | None:
    """The share of the words in `texts` that are not in `known` (the person's training words)."""
    words = [w for t in texts for w in words_of(t)]
    return round(sum(w not in known for w in words) / len(words), 4) if words else None


def lengths(texts: list[str]) -> dict:
    """Quartiles of the lengths, in characters."""
    if not texts:
        return {}
    q1, median, q3 = np.percentile([len(t) for t in texts], [25, 50, 75])
    return {"q1": round(float(q1), 1), "median": round(float(median), 1), "q3": round(float(q3), 1),
            "mean": round(float(np.mean([len(t) for t in texts])), 1)}


def markov_posts(train_texts: list[str], count: int, *, seed: int = 0, max_chars: int = 280,
                 tries: int = 20) -> list[str]:
    """`count` posts from markovify trained on `train_texts` (one post a line, state size 2), with
    markovify's own overlap test off: the copy filter is applied, or not, by the caller."""
    import random

    import markovify

    lines = [" ".join(t.split()) for t in train_texts if len(t.split()) >= 2]
    if len(lines) < 2:
        return []
    chain = markovify.NewlineText("\n".join(lines), state_size=2, well_formed=False)
    state = random.getstate()
    random.seed(seed)  # markovify draws from the global random module
    try:
        posts = []
        for _ in range(count * tries):
            post = chain.make_short_sentence(max_chars, tries=1, test_output=False)
            if post:
                posts.append(post)
            if len(posts) == count:
                break
        return posts
    finally:
        random.setstate(state)


def without_copies(texts: list[str], index: CopyIndex) -> list[str]:
    return [t for t in texts if not index.copies(t)]


def ngram_posts(model: NGramModel, vocab: Vocab, count: int, *, seed: int = 0, temperature: float = 1.0,
                max_chars: int = 280) -> list[str]:
    """`count` posts sampled from the character n-gram, one character at a time."""
    rng = np.random.default_rng(seed)
    posts = []
    for _ in range(count):
        context, out = [EOS, KIND_IDS["post"]], []
        for _ in range(max_chars):
            p = model.prob(context[-(model.order - 1):] if model.order > 1 else [])
            if temperature != 1.0:
                p = np.exp(np.log(np.maximum(p, 1e-30)) / temperature)
            p = p / p.sum()
            token = int(rng.choice(len(p), p=p))
            if token == EOS:
                break
            context.append(token)
            out.append(token)
        posts.append(vocab.decode(out))
    return posts


def report(real: list[str], served: list[str], train_texts: list[str], index: CopyIndex,
           ngram: Callable[[], NGramModel] | None, vocab: Vocab, *, seed: int = 0, max_chars: int = 280,
           temperature: float = 1.0) -> dict:
    """The fidelity numbers of `dann eval`: the AUCs of dann, markovify (raw and copy-filtered)
    and the n-gram against `real`, the made-up-word shares, and the length quartiles. `ngram`
    builds the n-gram model, only when there are enough texts to sample it for."""
    count = len(served)
    enough = count >= MIN_TEXTS  # else no AUC can be given: do not sample the other generators either
    markov = markov_posts(train_texts, 3 * count, seed=seed, max_chars=max_chars) if enough else []
    markov_nocopy = without_copies(markov, index)[:count]
    markov = markov[:count]
    ngram_texts = (ngram_posts(ngram(), vocab, count, seed=seed, max_chars=max_chars, temperature=temperature)
                   if ngram and enough else [])
    known = {w for t in train_texts for w in words_of(t)}
    return {
        "auc_dann": discriminator_auc(real, served, seed),
        "auc_markov": discriminator_auc(real, markov, seed),
        "auc_markov_nocopy": discriminator_auc(real, markov_nocopy, seed),
        "auc_ngram": discriminator_auc(real, ngram_texts, seed),
        "made_up_words": made_up_words(served, known),
        "made_up_words_real": made_up_words(real, known),
        "made_up_words_markov": made_up_words(markov, known),
        "markov_copy_rate": round(1 - len(without_copies(markov, index)) / len(markov), 4) if markov else None,
        "lengths": {"real": lengths(real), "dann": lengths(served), "markov": lengths(markov)},
        "fidelity_texts": {"real": len(real), "dann": len(served), "markov": len(markov),
                           "markov_nocopy": len(markov_nocopy), "ngram": len(ngram_texts)},
    }


def auc_text(auc: float | None) -> str:
    return "n/a (too few texts)" if auc is None or math.isnan(auc) else f"{auc:.3f}"
