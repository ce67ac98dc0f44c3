"""`dann tune`: the vmapped population trains each member exactly as a lone run would, the search
always includes the current config, and its answer is what the trainer reads next."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dann.settings import Settings
from lstm.model import CharRNN, ModelConfig
from tests.conftest import repeated_corpus, run_config, tiny_config
from tests.trainer.helpers import TUNE_MODEL, TUNE_POST, tune_config
from trainer.config import SMALL_EXPORT, write_file
from trainer.retrain import configured, tuned_path
from trainer.train import make_optimizer, train_step
from trainer.tune import population_step, tune

pytestmark = pytest.mark.slow  # trains: not in the fast tier


def test_each_population_member_trains_exactly_like_a_lone_model_with_its_learning_rate():
    model = CharRNN(ModelConfig(vocab_size=12, hidden=16, layers=2), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    tx = make_optimizer(tiny_config())
    data = jax.random.randint(jax.random.key(1), (400,), 0, 12)
    starts, key, carry = jnp.zeros(1, jnp.int32), jax.random.key(2), model.init_carry(4)
    lrs = [1e-3, 1e-2, 5e-2]

    stacked = jax.tree.map(lambda p: jnp.stack([p] * len(lrs)), params)
    opt = jax.vmap(tx.init)(stacked)
    for step in range(3):
        stacked, opt, losses = population_step(graphdef, tx, stacked, opt, carry, data, starts, key, step,
                                               jnp.asarray(lrs), batch=4, seq=8)
    for i, lr in enumerate(lrs):
        alone, alone_opt = jax.tree.map(jnp.copy, params), tx.init(params)
        for step in range(3):
            alone, alone_opt, _, loss, _ = train_step(graphdef, tx, alone, alone_opt, model.init_carry(4), data,
                                                      starts, key, step, lr, batch=4, seq=8, stateful=False)
        member = jax.tree.map(lambda p, i=i: p[i], stacked)
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(member), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)  # batched matmuls round differently
        np.testing.assert_allclose(loss, losses[i], rtol=1e-5)
    assert not np.allclose(jax.tree.leaves(stacked)[0][0], jax.tree.leaves(stacked)[0][2])  # they did differ


def test_tune_includes_the_current_config_and_writes_what_the_trainer_reads(tmp_path):
    corpus = repeated_corpus(TUNE_POST, 150)
    result = tune(corpus, None, run_config(TUNE_MODEL, tune_config()), steps=60)
    assert len(result["trials"]) == 18  # 6 architectures x 3 learning rates
    assert result["current"]["change"] == {} and result["current"]["model"]["hidden"] == TUNE_MODEL["hidden"]
    assert result["current"]["train"]["learning_rate"] == 1e-3
    assert result["best"]["val_loss"] <= result["current"]["val_loss"]
    assert result["current_is_best"] == (result["best"] is result["current"])
    # On text this easy, 2x and 4x the current tiny rate train further in the same steps.
    assert not result["current_is_best"]

    settings = Settings(_env_file=None, checkpoint_dir=tmp_path / "serving", train_minutes=3)
    write_file(tuned_path(settings.checkpoint_dir), result["best"]["model"], result["best"]["train"])
    config = configured(settings, corpus)
    model_options = dataclasses.asdict(config.model)
    assert model_options == {**SMALL_EXPORT["model"], **result["best"]["model"]}  # the tuned file wins over the size layer
    assert config.train.learning_rate == result["best"]["train"]["learning_rate"]
    assert config.train.minutes == 3  # the budget stays the trainer's own
    assert config.source("train", "learning_rate") == "file" and config.source("train", "minutes") == "setting"
    assert "minutes" not in json.loads(tuned_path(settings.checkpoint_dir).read_text())["train"]
