"""`dann eval`: how good a trained model is, in the numbers docs/reply-quality.md and the report show.

- the validation loss, bpc and accuracy on the export's validation posts, beside a smoothed
  character n-gram model and a unigram model trained on the same training posts;
- the copy rate: the share of generated posts and replies whose every first-draw candidate held
  a long verbatim span of the corpus, so that without the guard of dann/voice/bestof.py (a
  hotter second draw, then a safe line) a copy would have been served. The trainer refuses to
  publish above DANN_MAX_COPY_RATE. Beside it, the share of what is actually served that copies
  (zero by construction, measured all the same) and the copy rate of single raw samples;
- distinct-1 and distinct-2 (unique word n-grams / all word n-grams) of generated posts beside
  the same number of real validation posts, and the posts' mean length;
- fidelity (trainer/fidelity.py): how well a classifier tells the generated posts from the real
  validation posts (ROC AUC, 0.5 is indistinguishable), beside markovify's (with and without the
  copy filter) and the n-gram's, and the share of made-up words.

The validation split is the one the model was trained with (its TrainConfig is in the checkpoint),
so the model is never scored on posts it learned from, provided the export is the same one.
"""

import dataclasses
import math

import numpy as np

from dann.voice.bestof import WORD, Tally, Voice, answer
from dann.voice.filters import Filters
from dann.voice.request import GenerationRequest
from lstm.checkpoint import Checkpoint
from trainer.baselines import NGramModel
from trainer.corpus import Corpus
from trainer.data import PreparedData, prepare
from trainer.fidelity import auc_text
from trainer.fidelity import report as fidelity_report
from trainer.train import scores

CHUNK = 16  # requests per sampler call: best_of * CHUNK rows


def distinct(texts: list[str], n: int) -> float:
    """Unique word n-grams over all word n-grams, counted across all the texts (not across joins)."""
    grams = []
    for text in texts:
        words = WORD.findall(text.lower())
        grams += [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def sample_many(voice: Voice, requests: list[GenerationRequest], *, best_of: int,
                max_chars: int, filters: Filters | None = None) -> tuple[list[str], Tally]:
    """One text per request, best of `best_of`, sampled CHUNK requests at a time."""
    texts, tally = [], Tally()
    for start in range(0, len(requests), CHUNK):
        got, seen = answer(voice, requests[start:start + CHUNK], best_of=best_of, max_chars=max_chars,
                           filters=filters)
        texts += [t for ts in got for t in ts]
        tally.add(seen)
    return texts, tally


def evaluate_checkpoint(ckpt: Checkpoint, corpus: Corpus, *, known_words: bool = True, ngram_mix: bool = True,
                        **options) -> dict:
    """`dann eval`: a saved model on the export it was trained on, split as it was trained. A
    version saved before lexicons gets one built from the training posts, as the trainer would.
    Without `ngram_mix` the LSTM is served alone, judged by its own val loss."""
    voice = Voice.of(ckpt, known_words)
    if not ngram_mix and voice.ngram is not None:
        voice = dataclasses.replace(voice, ngram=None, record=dataclasses.replace(
            voice.record, val_loss=voice.record.lstm_val_loss, ngram_weight=None))
    data = prepare(corpus, voice.record.config.train, vocab=ckpt.vocab)
    if voice.record.baselines and voice.record.data_hash == data.data_hash:
        data.baselines = voice.record.baselines  # training counted them on this very data
    if known_words and voice.lexicon is None:
        voice = dataclasses.replace(voice, lexicon=data.lexicon)
    return evaluate_voice(voice, data, **options)


def evaluate_voice(voice: Voice, data: PreparedData, *, samples: int = 100, best_of: int = 8,
                   temperature: float = 0.4, max_chars: int = 280, seed: int = 0,
                   val_scores: tuple[float, float] | None = None, filters: Filters | None = None) -> dict:
    """The numbers above for `voice` on `data`'s validation posts. `val_scores` is (val loss,
    accuracy) when already measured on this data (the trainer's); otherwise they are measured."""
    if val_scores is None:
        found = scores(voice.model, data, voice.ngram, fit=False)
        val_scores = found.served, found.accuracy
    val_loss, val_acc = val_scores
    lstm_val_loss = voice.record.lstm_val_loss if voice.ngram is not None else val_loss
    # A checkpoint from before the copy filter has no index: use one built as the trainer would.
    index = voice.copy_index or data.copy_index
    record = voice.record
    if not record.median_chars:  # older checkpoints lack these
        record = dataclasses.replace(record, median_chars=data.stats["median_chars"])
    if not record.lengths:
        record = dataclasses.replace(record, lengths=data.length_quantiles)
    filtered = dataclasses.replace(voice, copy_index=index, record=record)
    raw_voice = dataclasses.replace(filtered, copy_index=None)

    val_records = data.val_records
    rng = np.random.default_rng(seed)
    real_posts = [r.text for r in val_records if r.kind == "post"] or [r.text for r in val_records]
    real = [real_posts[i] for i in rng.permutation(len(real_posts))[:samples]]
    # Replies answer real validation posts, the way the bot answers a message.
    contexts = [val_records[i].text[:500] for i in rng.integers(0, len(val_records), samples)]

    def ask(mode, contexts, base):
        return [GenerationRequest(mode, context=c, temperature=temperature, seed=base + i, max_chars=max_chars)
                for i, c in enumerate(contexts)]

    replies, reply_tally = sample_many(filtered, ask("reply", contexts, seed), best_of=best_of, max_chars=max_chars,
                                       filters=filters)
    raw, _ = sample_many(raw_voice, ask("reply", contexts, seed + 10_000), best_of=1, max_chars=max_chars)
    posts, post_tally = sample_many(filtered, ask("post", [None] * samples, seed + 20_000), best_of=best_of,
                                    max_chars=max_chars, filters=filters)
    # Real posts are cut to the generation cap, so distinct-n compares texts of the same lengths.
    real_cut = [text[:max_chars] for text in real]
    tally = Tally()
    tally.add(reply_tally)
    tally.add(post_tally)
    passing = fidelity_report(real_cut, posts, [r.text for r in data.train_records], index,
                              lambda: NGramModel(data.train, len(data.vocab), data.baselines.ngram_order),
                              data.vocab, seed=seed, max_chars=max_chars)
    return {
        "model_version": voice.version,
        "val_loss": round(val_loss, 4),  # as served: the mixture when the n-gram is mixed in
        "bpc": round(val_loss / math.log(2), 4),
        "lstm_val_loss": None if lstm_val_loss is None else round(lstm_val_loss, 4),
        "ngram_weight": None if voice.ngram is None else round(voice.ngram.weight, 4),
        "val_acc": round(val_acc, 4),
        **dataclasses.asdict(data.baselines),
        "copy_rate": round(tally.all_copied / tally.texts, 4),
        "copy_rate_served": round(float(np.mean([index.copies(text) for text in replies + posts])), 4),
        "safe_line_rate": round(tally.safe_lines / tally.texts, 4),
        "copy_rate_raw": round(float(np.mean([index.copies(text) for text in raw])), 4),
        "distinct1_generated": distinct(posts, 1),
        "distinct1_real": distinct(real_cut, 1),
        "distinct2_generated": distinct(posts, 2),
        "distinct2_real": distinct(real_cut, 2),
        "mean_len_generated": round(float(np.mean([len(p) for p in posts])), 1),
        "mean_len_real": round(float(np.mean([len(p) for p in real])), 1),
        "samples": samples,
        "best_of": best_of,
        "temperature": temperature,
        "candidates": tally.as_dict(),
        "copy_filter": index.settings(),
        "known_words": voice.lexicon is not None,
        **passing,
    }


def _share(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def table(result: dict) -> str:
    """The human-readable form of `evaluate_checkpoint`'s result."""
    r = result
    seen = r["candidates"]
    rows = [
        ("validation loss", f"{r['val_loss']:.4f} nats/char ({r['bpc']:.3f} bits), accuracy {r['val_acc']:.1%}"
                            + (f"; the LSTM alone {r['lstm_val_loss']:.4f}, mixed with the n-gram at weight "
                               f"{r['ngram_weight']:.2f}" if r.get("ngram_weight") is not None else "")),
        (f"{r['ngram_order']}-gram baseline", f"{r['ngram_val_loss']:.4f} nats/char"),
        ("unigram baseline", f"{r['unigram_val_loss']:.4f} nats/char"),
        ("copy rate", f"{r['copy_rate']:.1%} of texts had only copies to offer (best of {r['best_of']}); "
                      f"{r['copy_rate_served']:.1%} served; {r['copy_rate_raw']:.1%} of single reply samples"),
        ("distinct-1", f"{r['distinct1_generated']:.3f} generated, {r['distinct1_real']:.3f} real"),
        ("distinct-2", f"{r['distinct2_generated']:.3f} generated, {r['distinct2_real']:.3f} real"),
        ("mean post length", f"{r['mean_len_generated']:.0f} chars generated, {r['mean_len_real']:.0f} real"),
        ("candidates rejected", f"{seen['rejected']} of {seen['candidates']}: {seen['copies']} copies, "
                                f"{seen['blocked']} blocked, {seen['forgotten']} forgotten, "
                                f"{seen['gibberish']} gibberish, {seen['loops']} loops"),
        ("drawn again", f"{seen['resampled']} of {seen['texts']} texts; {seen['safe_lines']} got the safe line"),
    ]
    if "auc_dann" in r:
        rows += [
            ("told from real (AUC)", f"dann {auc_text(r['auc_dann'])}, markovify {auc_text(r['auc_markov'])} "
                                     f"({auc_text(r['auc_markov_nocopy'])} without its copies), "
                                     f"{r['ngram_order']}-gram {auc_text(r['auc_ngram'])}; 0.5 is indistinguishable"),
            ("made-up words", f"{_share(r['made_up_words'])} of dann's words, {_share(r['made_up_words_real'])} of "
                              f"real held-out posts', {_share(r['made_up_words_markov'])} of markovify's"),
            ("markovify copies", f"{_share(r['markov_copy_rate'])} of its posts copy a training post"),
        ]
    width = max(len(name) for name, _ in rows)
    head = (f"Model version {r['model_version']}, {r['samples']} posts and {r['samples']} replies at temperature "
            f"{r['temperature']}" + (", spelling only the person's words" if r.get("known_words") else ""))
    return "\n".join([head, *(f"  {name:<{width}}  {value}" for name, value in rows)])
