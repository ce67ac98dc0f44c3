"""DANN_RECENCY_HALF_LIFE_DAYS: training windows drawn toward newer posts."""

import jax
import numpy as np

from lstm.vocab import Vocab
from trainer.batches import encode_records, post_starts, random_windows, recency_weights
from trainer.config import resolve
from trainer.corpus import Record

VOCAB = Vocab.build(["old post aaaa", "new post bbbb"], min_count=1)


def records():
    old = [Record("post", "old post aaaa", "2024-01-01T00:00:00+00:00") for _ in range(50)]
    new = [Record("post", "new post bbbb", "2024-01-31T00:00:00+00:00") for _ in range(50)]
    return old + new


def test_a_post_a_half_life_older_weighs_half_and_one_without_a_time_as_the_newest():
    posts = [Record("post", "old post aaaa", "2024-01-01T00:00:00+00:00"),
             Record("post", "new post bbbb", "2024-01-11T00:00:00+00:00"), Record("post", "new post bbbb")]
    data = encode_records(posts, VOCAB)
    by_any, by_post = recency_weights(posts, VOCAB, 10.0, 4, post_starts(data, 4))
    length = len(VOCAB.encode_record("post", "old post aaaa"))
    steps = np.diff(np.concatenate([[0.0], by_any]))
    assert np.isclose(steps[length - 1] / steps[length], 0.5, rtol=1e-3)  # the old post's tokens: half
    assert np.isclose(by_any[-1], 1.0) and np.all(np.diff(by_any) >= 0)
    assert np.isclose(by_post[-1], 1.0)


def test_windows_are_drawn_toward_newer_posts():
    posts = records()
    data = encode_records(posts, VOCAB)
    starts = post_starts(data, 8)
    recency = tuple(map(jax.numpy.asarray, recency_weights(posts, VOCAB, 5.0, 8, starts)))

    def share_new(weights):
        begins = []
        for i in range(20):
            x, _ = random_windows(jax.numpy.asarray(data), jax.numpy.asarray(starts), jax.random.key(i), 64, 8, weights)
            begins.append(np.asarray(x))
        text = "".join(VOCAB.decode(row) for batch in begins for row in batch)
        return text.count("b") / max(1, text.count("a") + text.count("b"))

    assert 0.4 < share_new(None) < 0.6  # uniform: as many windows in each half
    assert share_new(recency) > 0.9  # 30 days is six half-lives: the old half is drawn 1/64 as often


def test_the_setting_reaches_the_run_config():
    assert resolve(chars=500_000, platform="cpu", recency_half_life_days=90).train.recency_half_life_days == 90
    assert resolve(chars=500_000, platform="cpu").train.recency_half_life_days is None
