"""What the trainer's tests share: the export and config `dann tune` starts from (one pair, so its
programs compile once), and the small export and environment of real `dann trainer` processes."""

import json
import os
import sys
import time
from pathlib import Path

from tests.conftest import tiny_config

EVAL_SAMPLES = 6  # posts and replies the trainer samples to measure what it publishes (50 by default)
DANN = [sys.executable, "-m", "dann.cli"]

TUNE_POST, TUNE_MODEL = "a short post about cats and dogs", {"hidden": 32}


def tune_config():
    return tiny_config(learning_rate=1e-3, minutes=1.0, max_steps=None)


def write_export(path: Path, extra: str = "") -> Path:
    lines = ["good morning friends", "lol same", "coffee first then code"] * 40
    path.write_text("\n".join(f"{line} {i % 7}" for i, line in enumerate(lines)) + extra)
    return path


def trainer_env(settings, minutes="0.5"):
    """The environment of a real `dann trainer` process: a small model, so its runs are quick."""
    config = Path(settings.checkpoint_dir).parent / "train_config.json"
    config.write_text(json.dumps({"model": {"hidden": 64}, "train": {"batch_size": 16, "seq_len": 32,
                                                                      "min_char_count": 1, "eval_every": 50}}))
    return {**os.environ, "JAX_PLATFORMS": "cpu", "DANN_EXPORT_PATH": str(settings.export_path),
            "DANN_CHECKPOINT_DIR": str(settings.checkpoint_dir), "DANN_TRAIN_MINUTES": minutes,
            "DANN_TRAIN_CONFIG": str(config), "DANN_PUBLISH_EVAL_SAMPLES": str(EVAL_SAMPLES)}


def config_file(config, path: Path) -> Path:
    """`config` (a RunConfig) as a DANN_TRAIN_CONFIG file: a `dann trainer` process given it trains
    what the test trained in-process, so it loads those compiled programs from the shared cache."""
    path.write_text(json.dumps({k: v for k, v in config.to_json().items() if k in ("model", "train", "speed")}))
    return path


def wait_for(condition, timeout=120.0, every=0.001):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False
