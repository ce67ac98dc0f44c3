"""The export and config `dann tune` starts from, one pair for every tuning test so its programs compile once."""

from tests.conftest import tiny_config

TUNE_POST, TUNE_MODEL = "a short post about cats and dogs", {"hidden": 32}


def tune_config():
    return tiny_config(learning_rate=1e-3, minutes=1.0, max_steps=None)
