"""Quality levers measured with `dann eval`'s numbers but not part of serving.

    python -m trainer.levers EXPORT --checkpoint-dir DIR [--temp 0.7] [--free-spelling]
        [--median-length] [--length-weight W] [--pair-score W] [--ngram-mix W] [--samples 100]

prints auc_dann and its neighbours for the newest model with one lever changed: spelling freely,
every text aimed at the median length, another length weight, a score that prefers word pairs the
person wrote, or another weight for the n-gram the model is served with (lstm/ngram.py; the model
must have been trained with the mixture).
"""

import argparse
import dataclasses
import itertools
import json
import sys

from dann.state import store_beside
from dann.voice import bestof
from dann.voice.bestof import Voice
from dann.voice.forget import ForgetList
from lstm.checkpoint import load_latest
from trainer.data import prepare
from trainer.evaluation import evaluate_voice
from trainer.retrain import read_export


def pair_score(weight: float, train_texts: list[str]):
    """bestof.score plus `weight` times the share of the text's word pairs found in the training posts."""
    from trainer.fidelity import words_of

    known = set()
    for text in train_texts:
        words = words_of(text)
        known.update(itertools.pairwise(words))
    plain = bestof.score

    def score(text, logp, **options):
        words = words_of(text)
        pairs = list(itertools.pairwise(words))
        return plain(text, logp, **options) + (weight * sum(p in known for p in pairs) / len(pairs) if pairs else 0.0)

    return score


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.levers",
                                     description="dann eval's fidelity numbers with one lever changed")
    parser.add_argument("path")
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--temp", type=float, default=0.7)
    parser.add_argument("--free-spelling", action="store_true", help="no lexicon")
    parser.add_argument("--median-length", action="store_true", help="aim every text at the median length")
    parser.add_argument("--length-weight", type=float, help=f"default {bestof.LENGTH_WEIGHT}")
    parser.add_argument("--pair-score", type=float, help="add this times the share of known word pairs")
    parser.add_argument("--ngram-mix", type=float, help="serve the model's n-gram at this weight")
    args = parser.parse_args(argv)
    ckpt = load_latest(args.checkpoint_dir)
    voice = Voice.of(ckpt)
    data = prepare(read_export(args.path, ForgetList(store_beside(args.checkpoint_dir))), voice.record.config.train, vocab=ckpt.vocab)
    record = voice.record if voice.record.lengths else dataclasses.replace(voice.record, lengths=data.length_quantiles)
    if args.median_length:  # every percentile the median: each text's drawn target is the median
        record = dataclasses.replace(record, lengths={kind: [float(median)] * 21
                                                      for kind, median in record.median_chars.items() if median})
    voice = dataclasses.replace(voice, record=record, lexicon=None if args.free_spelling else voice.lexicon or data.lexicon)
    if args.ngram_mix is not None:
        if voice.ngram is None:
            parser.error("this model was trained without the n-gram mixture")
        voice = dataclasses.replace(voice, ngram=voice.ngram.with_weight(args.ngram_mix))
    # Measurement only: the module's own score and weight, swapped for this one run.
    if args.length_weight is not None:
        bestof.LENGTH_WEIGHT = args.length_weight
    if args.pair_score is not None:
        bestof.score = pair_score(args.pair_score, [r.text for r in data.train_records])
    result = evaluate_voice(voice, data, samples=args.samples, temperature=args.temp)
    keys = ("auc_dann", "auc_markov_nocopy", "made_up_words", "copy_rate", "mean_len_generated", "mean_len_real")
    print(json.dumps({**{k: v for k, v in vars(args).items() if k not in ("path", "checkpoint_dir")},
                      **{k: result[k] for k in keys}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
