"""`dann eval`: how good a trained model is, in the numbers the README and the report show.

- the validation loss, bpc and accuracy on the export's validation posts, beside a smoothed
  character n-gram model and a unigram model trained on the same training posts;
- the copy rate of generated replies: the share that hold a long verbatim span of the corpus, as
  served (best of n, after the copy filter) and for raw samples;
- distinct-1 and distinct-2 (unique word n-grams / all word n-grams) of generated posts beside
  the same number of real validation posts, and the posts' mean length.

The validation split is the one the model was trained with (its TrainConfig is in the checkpoint),
so the model is never scored on posts it learned from, provided the export is the same one.
"""

import math

import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm.bestof import WORD, Tally, generate_best
from lstm.copyindex import CopyIndex
from trainer.baselines import baselines
from trainer.batches import encode_records, split_records
from trainer.corpus import Corpus
from trainer.train import TrainConfig, evaluate

CHUNK = 16  # prompts per sampler call: best_of * CHUNK rows


def distinct(texts: list[str], n: int) -> float:
    """Unique word n-grams over all word n-grams, counted across all the texts (not across joins)."""
    grams = []
    for text in texts:
        words = WORD.findall(text.lower())
        grams += [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def sample_many(ckpt, index, *, mode: str, contexts: list[str | None], best_of: int, temperature: float,
                max_chars: int, seed: int, typical_chars: dict | None) -> tuple[list[str], Tally]:
    """One text per context, best of `best_of`, sampled CHUNK prompts at a time."""
    texts, tally = [], Tally()
    for start in range(0, len(contexts), CHUNK):
        part = contexts[start:start + CHUNK]
        got, seen = generate_best(
            ckpt.model, ckpt.vocab, [""] * len(part), n=best_of, index=index, val_loss=ckpt.info.get("val_loss"),
            typical_chars=typical_chars,
            mode=[mode] * len(part), context=part, temperature=[temperature] * len(part),
            seed=list(range(seed + start, seed + start + len(part))), max_chars=max_chars,
        )
        texts += got
        tally.add(seen)
    return texts, tally


def evaluate_checkpoint(ckpt, corpus: Corpus, *, samples: int = 100, best_of: int = 8, temperature: float = 0.4,
                        max_chars: int = 280, seed: int = 0) -> dict:
    config = TrainConfig(**{**ckpt.info.get("train", {}), "minutes": 1.0, "max_steps": None})
    train_records, val_records = split_records(corpus.records, config.val_fraction)
    train_data = encode_records(train_records, ckpt.vocab)
    val_data = encode_records(val_records, ckpt.vocab)
    graphdef, params = nnx.split(ckpt.model)
    val_loss, val_acc = evaluate(graphdef, params, jnp.asarray(val_data))
    # A checkpoint from before the copy filter has no index: build one as the trainer would.
    index = ckpt.copy_index or CopyIndex.build((r.text for r in corpus.records), words=config.copy_words,
                                               chars=config.copy_chars)

    typical = ckpt.info.get("median_chars") or corpus.stats()["median_chars"]  # older checkpoints lack it
    rng = np.random.default_rng(seed)
    real_posts = [r.text for r in val_records if r.kind == "post"] or [r.text for r in val_records]
    real = [real_posts[i] for i in rng.permutation(len(real_posts))[:samples]]
    # Replies answer real validation posts, the way the bot answers a message.
    contexts = [val_records[i].text[:500] for i in rng.integers(0, len(val_records), samples)]
    replies, reply_tally = sample_many(ckpt, index, mode="reply", contexts=contexts, best_of=best_of,
                                       temperature=temperature, max_chars=max_chars, seed=seed, typical_chars=typical)
    raw, _ = sample_many(ckpt, None, mode="reply", contexts=contexts, best_of=1,
                         temperature=temperature, max_chars=max_chars, seed=seed + 10_000, typical_chars=typical)
    posts, post_tally = sample_many(ckpt, index, mode="post", contexts=[None] * samples, best_of=best_of,
                                    temperature=temperature, max_chars=max_chars, seed=seed + 20_000,
                                    typical_chars=typical)
    # Real posts are cut to the generation cap, so distinct-n compares texts of the same lengths.
    real_cut = [text[:max_chars] for text in real]
    tally = Tally()
    tally.add(reply_tally)
    tally.add(post_tally)
    return {
        "model_version": ckpt.version,
        "val_loss": round(val_loss, 4),
        "bpc": round(val_loss / math.log(2), 4),
        "val_acc": round(val_acc, 4),
        **baselines(train_data, val_data, len(ckpt.vocab)),
        "copy_rate": round(float(np.mean([index.copies(text) for text in replies])), 4),
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
    }


def table(result: dict) -> str:
    """The human-readable form of `evaluate_checkpoint`'s result."""
    r = result
    seen = r["candidates"]
    rows = [
        ("validation loss", f"{r['val_loss']:.4f} nats/char ({r['bpc']:.3f} bits), accuracy {r['val_acc']:.1%}"),
        (f"{r['ngram_order']}-gram baseline", f"{r['ngram_val_loss']:.4f} nats/char"),
        ("unigram baseline", f"{r['unigram_val_loss']:.4f} nats/char"),
        ("reply copy rate", f"{r['copy_rate']:.1%} as served (best of {r['best_of']}), {r['copy_rate_raw']:.1%} of "
                            f"single samples"),
        ("distinct-1", f"{r['distinct1_generated']:.3f} generated, {r['distinct1_real']:.3f} real"),
        ("distinct-2", f"{r['distinct2_generated']:.3f} generated, {r['distinct2_real']:.3f} real"),
        ("mean post length", f"{r['mean_len_generated']:.0f} chars generated, {r['mean_len_real']:.0f} real"),
        ("candidates rejected", f"{seen['rejected']} of {seen['candidates']}: {seen['copies']} copies, "
                                f"{seen['gibberish']} gibberish, {seen['loops']} loops"),
    ]
    width = max(len(name) for name, _ in rows)
    head = (f"Model version {r['model_version']}, {r['samples']} posts and {r['samples']} replies at temperature "
            f"{r['temperature']}")
    return "\n".join([head, *(f"  {name:<{width}}  {value}" for name, value in rows)])
