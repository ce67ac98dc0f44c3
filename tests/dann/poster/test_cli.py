"""`dann poster` as a person runs it: a real subprocess against a fake X on 127.0.0.1."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.dann.poster.fake_x import FakeX

DANN = [sys.executable, "-m", "dann.cli"]
X_KEYS = {"DANN_X_API_KEY": "key", "DANN_X_API_SECRET": "key-secret", "DANN_X_ACCESS_TOKEN": "token",
          "DANN_X_ACCESS_SECRET": "token-secret"}


def poster(directory, *argv, **env):
    blank = {k: v for k, v in os.environ.items() if not k.startswith("DANN_") or k == "DANN_JAX_CACHE_DIR"}
    return subprocess.run([*DANN, "poster", *argv], capture_output=True, text=True, timeout=300, cwd=directory, check=False,
                          env={**blank, "DANN_CHECKPOINT_DIR": str(directory / "ckpt"), **env})


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("dann.")]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.slow
def test_without_a_destination_it_says_what_to_set(tmp_path):
    assert "no destination is set up" in one_line(poster(tmp_path, "--once"))
    assert "needs all four keys: set DANN_X_ACCESS_TOKEN, DANN_X_ACCESS_SECRET" in one_line(
        poster(tmp_path, "--once", DANN_X_API_KEY="k", DANN_X_API_SECRET="s"))
    assert "DANN_POSTER_EVERY" in one_line(poster(tmp_path, "--once", DANN_POSTER_EVERY="5m", **X_KEYS))


@pytest.mark.slow
def test_a_dry_run_prints_a_post_and_sends_nothing(tmp_path, trained_dir, fake_server):
    x = FakeX(fake_server)
    shutil.copytree(trained_dir, tmp_path / "ckpt")
    # --dry-run wins over DANN_POSTER_LIVE.
    done = poster(tmp_path, "--once", "--dry-run", DANN_X_API_URL=fake_server.url, DANN_POSTER_LIVE="true", **X_KEYS)
    assert done.returncode == 0, done.stderr
    assert "[dry run] x would post at " in done.stdout
    assert [r.method for r in fake_server.requests] == ["GET"] and x.posted() == []  # who am I, and nothing sent
    assert "token-secret" not in done.stdout + done.stderr and "key-secret" not in done.stdout + done.stderr


@pytest.mark.slow
def test_refused_keys_stop_it_with_one_line(tmp_path, trained_dir, fake_server):
    FakeX(fake_server)
    fake_server.script("GET", "/2/users/me", (401, {"title": "Unauthorized"}))
    shutil.copytree(trained_dir, tmp_path / "ckpt")
    line = one_line(poster(tmp_path, "--once", DANN_X_API_URL=fake_server.url, DANN_POSTER_LIVE="true", **X_KEYS))
    assert line.startswith("dann: error: x: X refused the keys (401)")
