"""Hyperparameters: the layers in order, who set what, config files, and the speed knobs passed
down to the kernel instead of living in module globals."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm.model import CharRNN, ModelConfig
from lstm.schema import ConfigError, ModelSpec, RunConfig, SpeedConfig
from tests.conftest import tiny_config
from trainer.config import SMALL_EXPORT_CHARS, read_file, resolve, write_file
from trainer.train import loss_fn, make_optimizer, train_step

BIG = SMALL_EXPORT_CHARS * 2


def test_each_layer_overrides_the_one_below_and_says_so(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"model": {"hidden": 128, "layers": 2}, "train": {"minutes": 9, "batch_size": 4}}))
    config = resolve(chars=1000, platform="gpu", minutes=3, file=path,
                     flags={"model": {"layers": 3}, "train": {"seed": 7}})
    assert (config.model.hidden, config.model.layers, config.model.dropout) == (128, 3, 0.5)
    assert (config.train.minutes, config.train.batch_size, config.train.seed) == (9, 4, 7)
    assert config.speed.unroll == 16  # a GPU, even for a small export
    assert {key: config.source(*key.split(".")) for key in (
        "model.hidden", "model.layers", "model.dropout", "model.cell", "train.minutes", "train.seed", "speed.unroll",
    )} == {"model.hidden": "file", "model.layers": "flag", "model.dropout": "size", "model.cell": "default",
           "train.minutes": "file", "train.seed": "flag", "speed.unroll": "device"}
    assert "model.layers 3 (flag)" in config.describe() and "model.cell" not in config.describe()


def test_the_setting_sets_the_budget_unless_a_file_or_flag_does():
    assert resolve(chars=BIG, platform="cpu", minutes=2).train.minutes == 2
    steps_only = resolve(chars=BIG, platform="cpu", minutes=2, flags={"train": {"max_steps": 5, "minutes": None}})
    assert (steps_only.train.minutes, steps_only.train.max_steps) == (None, 5)
    assert resolve(chars=BIG, platform="cpu").speed == SpeedConfig(unroll=1, bf16=False)


@pytest.mark.parametrize("content, words", [
    ("{not json", ["cannot be read"]),
    ('["model"]', ["JSON object"]),
    ('{"modle": {}}', ["unknown section", "modle"]),
    ('{"train": {"batch_sise": 8}}', ["unknown field", "batch_sise"]),
    ('{"model": {"cell": "rnn"}}', ["cell", "rnn"]),
    ('{"train": {"learning_rate": "fast"}}', ["train config"]),
    ('{"speed": {"unroll": 0}}', ["unroll"]),
])
def test_a_bad_config_file_is_one_clear_error(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        resolve(chars=BIG, platform="cpu", file=path)
    assert "bad.json" in str(error.value) and "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_a_written_file_reads_back_without_the_budget(tmp_path):
    config = resolve(chars=BIG, platform="cpu", flags={"model": {"hidden": 32}, "train": {"max_steps": 9}})
    path = write_file(tmp_path / "t.json", {"hidden": 32}, {"seq_len": 16, "max_steps": 9, "minutes": 1})
    assert read_file(path) == {"model": {"hidden": 32}, "train": {"seq_len": 16}}
    again = resolve(chars=BIG, platform="cpu", file=path)
    assert (again.model.hidden, again.train.seq_len, again.train.minutes) == (32, 16, 5.0)
    assert RunConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_the_model_spec_is_the_model_without_its_vocabulary():
    spec = ModelSpec(hidden=48, layers=2, cell="gru")
    assert spec.config(30) == ModelConfig(vocab_size=30, hidden=48, layers=2, cell="gru")
    assert ModelSpec.of(spec.config(30)) == spec
    with pytest.raises(ConfigError, match="dropout"):
        ModelSpec(dropout=1.0)


@pytest.mark.slow
def test_the_speed_knobs_reach_the_kernel_and_unrolling_changes_no_result():
    # The shapes of tests/trainer/test_train.py's one-step test, so the plain step is compiled once a run.
    model = CharRNN(ModelConfig(vocab_size=12, hidden=8, layers=2, residual=True), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    tx = make_optimizer(tiny_config())
    data = jax.random.randint(jax.random.key(1), (500,), 0, 12)
    starts = jnp.zeros(1, jnp.int32)

    def one_step(speed):
        state = jax.tree.map(jnp.copy, params)
        out = train_step(graphdef, tx, state, tx.init(state), model.init_carry(4), data, starts, jax.random.key(0), 0,
                         1e-2, batch=4, seq=8, stateful=False, speed=speed)
        return out[0], float(out[3])

    plain, plain_loss = one_step(SpeedConfig())
    unrolled, unrolled_loss = one_step(SpeedConfig(unroll=4))  # forward and the hand-written backward scan
    assert unrolled_loss == pytest.approx(plain_loss, rel=1e-6)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(unrolled), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    x, y = data[:32].reshape(4, 8), data[1:33].reshape(4, 8)
    forward = jax.jit(loss_fn, static_argnames=("graphdef", "speed"))
    full, _ = forward(params, graphdef, x, y, model.init_carry(4), speed=SpeedConfig())
    low, _ = forward(params, graphdef, x, y, model.init_carry(4), speed=SpeedConfig(bf16=True))
    assert float(low) == pytest.approx(float(full), rel=1e-2) and float(low) != float(full)  # bf16 reached the matmuls


def test_the_gru_scan_unrolls_to_the_same_result():
    model = CharRNN(ModelConfig(vocab_size=9, hidden=8, layers=1, cell="gru"), rngs=nnx.Rngs(1))
    tokens = jax.random.randint(jax.random.key(0), (3, 6), 0, 9)
    plain, _ = model(tokens, model.init_carry(3))
    unrolled, _ = model(tokens, model.init_carry(3), unroll=3)
    np.testing.assert_allclose(plain, unrolled, rtol=1e-5, atol=1e-6)
