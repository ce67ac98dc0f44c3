"""Quality levers measured with `dann eval`'s numbers but not part of serving.

    python -m trainer.levers EXPORT --checkpoint-dir DIR [--temp 0.7] [--free-spelling]
        [--median-length] [--length-weight W] [--pair-score W] [--ngram-mix W] [--samples 100]

prints auc_dann and its neighbours for the newest model with one lever changed: spelling freely,
every text aimed at the median length, another length weight, a score that prefers word pairs the
person wrote, or the n-gram mixed into sampling.

`--ngram-mix` draws every candidate from a mixture of the LSTM's next-character distribution and
the Kneser-Ney n-gram's (trainer/baselines.py), p = (1 - w) p_lstm + w p_ngram, then applies the
temperature, the banned ids and the lexicon as lstm/sample.py does, behind the same best-of-n and
copy filter. The n-gram lives in numpy, so this sampler steps on the host, one jitted LSTM step at
a time: fine for a measurement, too slow to serve. docs/fidelity.md has what it measured, and
why it is not served.
"""

import argparse
import dataclasses
import functools
import itertools
import json
import sys

import jax
import numpy as np
from flax import nnx

from dann.serving import bestof
from dann.serving.bestof import Voice
from lstm.checkpoint import load_latest
from lstm.sample import encode_prompts
from lstm.vocab import EOS, POST, REPLY, UNK
from trainer.baselines import NGramModel
from trainer.data import prepare
from trainer.evaluation import evaluate_voice
from trainer.retrain import read_export


@functools.partial(jax.jit, static_argnums=0)
def _step(graphdef, params, token, carry):
    return nnx.merge(graphdef, params).step(token, carry)


@dataclasses.dataclass
class NGramMix:
    """A sampler with lstm.sample.generate's signature that mixes in the n-gram."""

    ngram: NGramModel
    weight: float

    def __call__(self, model, vocab, prompts, *, mode, context, temperature, seed, max_chars, lexicon=None,
                 top_k=0, top_p=1.0):
        rows = len(prompts)
        each = [(c if isinstance(c, list) else [c] * rows) for c in (mode, context, temperature, seed)]
        modes, contexts, temperatures, seeds = each
        ids, lens = encode_prompts(vocab, modes, prompts, contexts)
        width, steps = ids.shape[1], ids.shape[1] + max_chars
        graphdef, params = nnx.split(model)
        rngs = [np.random.default_rng(s) for s in seeds]
        order = self.ngram.order
        stream = np.full((rows, order - 1 + steps + 1), EOS, np.int64)  # left-padded with <eos> for the n-gram
        stream[:, order - 1] = ids[:, 0]
        token, carry = jax.numpy.asarray(ids[:, 0]), model.init_carry(rows)
        out = [[] for _ in range(rows)]
        logp, done = np.zeros(rows), np.zeros(rows, bool)
        node = np.zeros(rows, np.int64)
        temps = np.maximum(np.asarray(temperatures, float), 1e-6)[:, None]
        for t in range(steps - 1):
            logits, carry = _step(graphdef, params, token, carry)
            logits = np.asarray(logits, np.float64)
            logits[:, [UNK, POST, REPLY]] = -np.inf
            model_p = np.exp(logits - logits.max(axis=1, keepdims=True))
            model_p /= model_p.sum(axis=1, keepdims=True)
            mixed = (1 - self.weight) * model_p + self.weight * self.ngram.prob_rows(stream[:, t + 1:t + order])
            mixed[:, [UNK, POST, REPLY]] = 0.0
            scaled = np.exp(np.log(np.maximum(mixed, 1e-300)) / temps) * (mixed > 0)
            if lexicon is not None:
                following = lexicon.next[node]
                spells = following[:, np.maximum(lexicon.column, 0)] >= 0
                scaled *= np.where(lexicon.column >= 0, spells, lexicon.complete[node][:, None])
            chosen = np.array([rngs[b].choice(len(scaled[b]), p=scaled[b] / scaled[b].sum()) for b in range(rows)])
            in_prompt = t + 1 < lens
            nxt = np.where(in_prompt, ids[:, min(t + 1, width - 1)], chosen)
            write = ~in_prompt & ~done
            logp += np.where(write, np.log(np.maximum(model_p[np.arange(rows), nxt], 1e-300)), 0.0)
            for b in np.flatnonzero(write):
                out[b].append(int(nxt[b]))
            done |= write & ((nxt == EOS) | (np.array([len(o) for o in out]) >= max_chars))
            if lexicon is not None:
                letter = lexicon.column[nxt]
                after = lexicon.next[node, np.maximum(letter, 0)]
                node = np.where(letter >= 0, np.where(after >= 0, after, lexicon.unknown), 0)
            stream[:, order + t] = nxt
            token = jax.numpy.asarray(nxt.astype(np.int32))
            if done.all():
                break
        return [(p + vocab.decode(o)[:max_chars], float(lp / max(len(o), 1)))
                for p, o, lp in zip(prompts, out, logp)]


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
    parser.add_argument("--ngram-mix", type=float, help="mix the n-gram in with this weight")
    args = parser.parse_args(argv)
    ckpt = load_latest(args.checkpoint_dir)
    voice = Voice.of(ckpt)
    data = prepare(read_export(args.path, args.checkpoint_dir), voice.record.config.train, vocab=ckpt.vocab)
    record = voice.record if voice.record.lengths else dataclasses.replace(voice.record, lengths=data.length_quantiles)
    if args.median_length:  # every percentile the median: each text's drawn target is the median
        record = dataclasses.replace(record, lengths={kind: [float(median)] * 21
                                                      for kind, median in record.median_chars.items() if median})
    voice = dataclasses.replace(voice, record=record, lexicon=None if args.free_spelling else voice.lexicon or data.lexicon)
    if args.ngram_mix is not None:
        ngram = NGramModel(data.train, len(data.vocab), data.baselines.ngram_order)
        voice = dataclasses.replace(voice, sampler=NGramMix(ngram, args.ngram_mix))
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
