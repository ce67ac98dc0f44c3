import logging
import shutil

import pytest

from lstm import checkpoint


def copy_dir(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_round_trip_keeps_config_vocab_and_info(trained_dir):
    ckpt = checkpoint.load_latest(trained_dir)
    assert ckpt.model.config.hidden == 64
    assert ckpt.info["steps"] == 150 and ckpt.info["posts"] == 80 and ckpt.info["replies"] == 80
    assert set(ckpt.info) >= {"data_hash", "val_loss", "trained_at", "config"}


def test_damaged_versions_are_skipped_with_a_log_line(trained_dir, tmp_path, caplog):
    directory = copy_dir(trained_dir, tmp_path / "ckpt")
    good = checkpoint.versions(directory)[0]
    damaged = copy_dir(directory / str(good), directory / str(good + 1))
    for f in (damaged / "params").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage")
    (directory / str(good + 2)).mkdir()  # an empty version directory
    shutil.copytree(directory / str(good), directory / f"{good + 3}.orbax-checkpoint-tmp")  # half-written
    with caplog.at_level(logging.WARNING, logger="dann.checkpoint"):
        ckpt = checkpoint.load_latest(directory)
    assert ckpt.version == good
    assert f"skipping checkpoint version {good + 1}" in caplog.text
    assert f"skipping checkpoint version {good + 2}" in caplog.text
    assert f"version {good + 3}" not in caplog.text  # orbax never lists an unfinished save


def test_versions_lists_finished_version_directories_newest_first(tmp_path):
    for name in ("2", "10", "3.orbax-checkpoint-tmp", "notes", "²"):  # ² is a digit to str.isdigit
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert checkpoint.versions(tmp_path) == [10, 2]
    assert checkpoint.versions(tmp_path / "missing") == []


def test_a_directory_of_only_damaged_versions_is_a_clear_error(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(checkpoint.NoCheckpoint, match="damaged"):
        checkpoint.load_latest(tmp_path)


def test_the_next_version_is_one_past_the_newest_present(tmp_path):
    assert checkpoint.next_version(tmp_path / "missing") == 1
    for name in ("3", "9.orbax-checkpoint-tmp"):
        (tmp_path / name).mkdir()
    assert checkpoint.next_version(tmp_path) == 4


def test_no_checkpoint_at_all(tmp_path):
    with pytest.raises(checkpoint.NoCheckpoint, match="no checkpoint"):
        checkpoint.load_latest(tmp_path / "missing")


def test_the_copy_index_round_trips_and_a_version_without_one_loads_without_the_filter(trained_dir, tmp_path):
    ckpt = checkpoint.load_latest(trained_dir)
    index = ckpt.copy_index
    assert index is not None and ckpt.meta["copy"]["chars"] == 40
    assert index.copies("good morning friends " * 3) is False  # 3 words a post: never 7 in a row
    # A version saved the way versions were before the copy filter existed.
    checkpoint.save(tmp_path, 1, ckpt.model, ckpt.vocab, ckpt.info)
    old = checkpoint.load_latest(tmp_path)
    assert old.copy_index is None and "copy" not in old.meta
    checkpoint.save(tmp_path, 2, ckpt.model, ckpt.vocab, ckpt.info, copy_index=index)
    again = checkpoint.load_latest(tmp_path).copy_index
    assert (again.char_hashes == index.char_hashes).all() and (again.word_hashes == index.word_hashes).all()


def test_the_lexicon_round_trips_and_a_version_without_one_spells_freely(trained_dir, tmp_path):
    ckpt = checkpoint.load_latest(trained_dir)
    assert ckpt.lexicon is not None and ckpt.meta["lexicon"] == len(ckpt.lexicon.words)
    assert {"good", "morning", "friends"} <= set(ckpt.lexicon.words)
    assert ckpt.lexicon.accepts("good morning") and not ckpt.lexicon.accepts("goodx")
    checkpoint.save(tmp_path, 1, ckpt.model, ckpt.vocab, ckpt.info)
    old = checkpoint.load_latest(tmp_path)
    assert old.lexicon is None and "lexicon" not in old.meta
    checkpoint.save(tmp_path, 2, ckpt.model, ckpt.vocab, ckpt.info, lexicon=ckpt.lexicon)
    again = checkpoint.load_latest(tmp_path).lexicon
    assert again.words == ckpt.lexicon.words and (again.next == ckpt.lexicon.next).all()
