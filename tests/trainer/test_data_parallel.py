"""Data-parallel training on 4 simulated CPU devices against 1 device, for the same global batch.

XLA_FLAGS is read once, when JAX starts, so each device count runs train() in its own subprocess.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm import checkpoint
from lstm.sample import generate

pytestmark = pytest.mark.slow  # trains in subprocesses: not in the fast tier
ROOT = Path(__file__).parents[2]
SHAKESPEARE = ROOT / "trainer" / "corpora" / "shakespeare.txt"

# Trains 20 steps and prints one JSON line: the metrics rows, and what the step saw: whether params
# came back on every device and how many carry rows each device held (that is the batch split: the
# batch itself is drawn inside the jitted step, out of sight). Then, with several devices, resumes
# from its own checkpoint for 5 more steps and tries a batch that does not split.
SCRIPT = r"""
import json, sys
from pathlib import Path
import jax
import trainer.train
from lstm.errors import DannError
from tests.conftest import TINY_MODEL, fit, tiny_config
from trainer.corpus import Corpus, Record

out, text = Path(sys.argv[1]), Path(sys.argv[2]).read_text()[:40_000]
corpus = Corpus("test", [Record("post", p) for p in text.split("\n\n") if p.strip()])
step, seen = trainer.train.train_step, {}

def spy(*args, **kwargs):
    params, opt_state, carry, loss, norm = result = step(*args, **kwargs)
    seen["param_devices"] = min(len(p.sharding.device_set) for p in jax.tree.leaves(params))
    seen["params_replicated"] = all(p.sharding.is_fully_replicated for p in jax.tree.leaves(params))
    seen["carry_rows_per_device"] = jax.tree.leaves(carry)[0].addressable_shards[0].data.shape[0]
    return result

trainer.train.train_step = spy
# The LSTM alone, whose val loss falls at every evaluation here, so the newest version is step 20.
fit(corpus, TINY_MODEL, tiny_config(batch_size=16, max_steps=20, eval_every=5, ngram_mix=False), out)
rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
report = {"devices": jax.device_count(), "seen": dict(seen),
          "train_loss": [r["train_loss"] for r in rows], "val_loss": [r["val_loss"] for r in rows]}
if jax.device_count() > 1:
    resumed = fit(corpus, TINY_MODEL, tiny_config(batch_size=16, max_steps=5, eval_every=5, ngram_mix=False), out)
    report["resumed_to_step"] = resumed.steps
    try:
        fit(corpus, TINY_MODEL, tiny_config(batch_size=6, max_steps=1), out / "odd")
    except DannError as error:
        report["odd_batch_error"] = str(error)
print(json.dumps(report))
"""


def start(devices: int, out: Path) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    out.mkdir()
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(SHAKESPEARE)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training on 1 and on 4 devices, run side by side."""
    root = tmp_path_factory.mktemp("dp")
    one, four = start(1, root / "one"), start(4, root / "four")
    return finish(one), finish(four), root


def test_four_devices_give_the_single_device_loss_curve(runs):
    one, four, _ = runs
    assert (one["devices"], four["devices"]) == (1, 4)
    assert len(one["train_loss"]) == 4 and one["train_loss"][-1] < one["train_loss"][0] - 0.3, one  # it learns
    # Same global batch, same windows, same dropout keys: only the order of the float sums differs.
    np.testing.assert_allclose(four["train_loss"], one["train_loss"], rtol=1e-3)
    np.testing.assert_allclose(four["val_loss"], one["val_loss"], rtol=1e-3)


def test_params_are_replicated_and_the_batch_is_split(runs):
    one, four, _ = runs
    assert four["seen"] == {"param_devices": 4, "params_replicated": True, "carry_rows_per_device": 4}
    assert one["seen"] == {"param_devices": 1, "params_replicated": True, "carry_rows_per_device": 16}


def test_four_devices_resume_from_their_own_checkpoint(runs):
    _, four, _ = runs
    assert four["resumed_to_step"] == 25  # 20 + 5: it went on from step 20, not from scratch


def test_a_batch_that_does_not_split_over_the_devices_is_refused(runs):
    _, four, _ = runs
    assert "batch size 6" in four["odd_batch_error"] and "multiple of 4" in four["odd_batch_error"]


def test_a_model_trained_on_four_devices_loads_and_samples_on_one(runs):
    _, _, root = runs
    saved = checkpoint.load_latest(root / "four")
    (text, _), = generate(saved.model, saved.vocab, ["ROMEO"], temperature=0.4, max_chars=40)
    assert text.startswith("ROMEO")
