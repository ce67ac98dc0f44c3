"""Checkpoints in a bucket (dann/state/bucket.py), against moto's real S3 server on 127.0.0.1:
a reader sees whole versions only, leftovers of a stopped upload are cleaned up, and a bucket out
of reach is one line, retried with backoff, while the cached model keeps serving."""

import json
import logging
import shutil

import pytest

from dann.settings import Settings, load_settings
from dann.state.bucket import Bucket, BucketError, bucket_for
from lstm import checkpoint
from tests.helpers import assert_one_line_error, run_main
from tests.servers import S3_KEYS, free_port


def bucket(s3_server, name, cache, endpoint=None) -> Bucket:
    return Bucket(f"s3://{name}/voice", cache, endpoint_url=endpoint or s3_server.url, **S3_KEYS)


@pytest.fixture
def published(s3_server, trained_dir, tmp_path):
    """A bucket holding `trained_dir`'s version, published from a trainer's cache."""
    name = s3_server.new_bucket()
    shutil.copytree(trained_dir, tmp_path / "trainer", ignore=shutil.ignore_patterns("state.db*", ".train*"))
    trainer = bucket(s3_server, name, tmp_path / "trainer")
    assert trainer.prepare() is None  # nothing published yet: the folder's own versions stay
    version = checkpoint.versions(tmp_path / "trainer")[0]
    trainer.publish(version, keep=2)
    return name, trainer, version


def copy_version(cache, old: int, new: int) -> None:
    shutil.copytree(cache / str(old), cache / str(new))


def test_a_reader_downloads_the_published_version_whole_and_the_trainer_prunes_the_bucket(s3_server, published,
                                                                                          tmp_path):
    name, trainer, first = published
    manifest = json.loads(s3_server.client().get_object(Bucket=name, Key="voice/manifest.json")["Body"].read())
    files = manifest["versions"][0]["files"]
    assert manifest["versions"][0]["version"] == first and files
    assert s3_server.keys(name, f"voice/versions/{first}/") == sorted(f"voice/versions/{first}/{f}" for f in files)

    reader = bucket(s3_server, name, tmp_path / "reader")
    assert reader.refresh() and not reader.refresh()  # downloaded once, then already there
    loaded = checkpoint.load_latest(tmp_path / "reader")
    assert loaded.version == first and loaded.info == checkpoint.load_latest(trainer.cache).info
    assert not [p for p in (tmp_path / "reader").iterdir() if p.name.startswith(".")]  # no download folder left

    for new in (first + 1, first + 2):  # two more publishes with keep=2: the first version leaves the bucket
        copy_version(trainer.cache, first, new)
        trainer.publish(new, keep=2)
    prefixes = {key.split("/")[2] for key in s3_server.keys(name, "voice/versions/")}
    assert prefixes == {str(first + 1), str(first + 2)}
    assert [v["version"] for v in trainer.manifest()["versions"]] == [first + 2, first + 1]
    assert reader.refresh() and checkpoint.versions(tmp_path / "reader") == [first + 2, first]  # it keeps two


def test_a_version_without_its_manifest_is_never_read_and_the_next_publish_replaces_what_it_left(
        s3_server, published, tmp_path):
    name, trainer, first = published
    client = s3_server.client()
    # A trainer killed mid-upload: some files of the next version are in the bucket, no manifest
    # names it, and its local copy is still in the trainer's folder.
    copy_version(trainer.cache, first, first + 1)
    client.put_object(Bucket=name, Key=f"voice/versions/{first + 1}/params/half-written", Body=b"x")
    reader = bucket(s3_server, name, tmp_path / "reader")
    reader.refresh()
    assert checkpoint.versions(tmp_path / "reader") == [first]

    assert trainer.prepare() == first  # the next run starts from what readers see
    assert checkpoint.versions(trainer.cache) == [first]
    copy_version(trainer.cache, first, first + 1)
    trainer.publish(first + 1, keep=3)
    assert f"voice/versions/{first + 1}/params/half-written" not in s3_server.keys(name)
    assert reader.refresh() and checkpoint.load_latest(tmp_path / "reader").version == first + 1


def test_a_bucket_out_of_reach_is_one_line_retried_later_and_never_shows_the_keys(published, s3_server,
                                                                                  tmp_path, caplog):
    name, _, first = published
    reader = bucket(s3_server, name, tmp_path / "reader")
    reader.refresh()
    down = bucket(s3_server, name, tmp_path / "reader", endpoint=f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="dann.bucket"):
        assert not down.refresh() and not down.refresh()  # the second try waits out the backoff
    lines = [r.getMessage() for r in caplog.records if r.name == "dann.bucket" and r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert f"s3://{name}/voice" in lines[0] and f"keeping version {first}" in lines[0] and "in 30 s" in lines[0]
    assert S3_KEYS["secret_access_key"] not in lines[0] and S3_KEYS["access_key_id"] not in lines[0]
    assert checkpoint.load_latest(tmp_path / "reader").version == first  # the cache still serves
    with pytest.raises(BucketError, match=f"cannot read the manifest of s3://{name}/voice"):
        down.publish(first, keep=2)


def test_settings_name_a_bucket_and_its_local_mirror_and_hide_the_keys(tmp_path):
    settings = Settings(_env_file=None, checkpoint_dir="s3://my-voice/models/", checkpoint_cache=tmp_path,
                        s3_access_key_id="key-id", s3_secret_access_key="hidden-value", database_url="postgresql://u:pw-hidden@db/dann")
    assert settings.checkpoint_url == "s3://my-voice/models/"
    assert settings.checkpoint_dir == tmp_path / "my-voice" / "models"
    assert bucket_for(settings).prefix == "models"
    assert "hidden-value" not in repr(settings) and "pw-hidden" not in repr(settings)
    assert bucket_for(Settings(_env_file=None, checkpoint_dir=tmp_path)) is None


@pytest.mark.parametrize("url, problem", [
    ("gs://my-voice/models", "gs:// is not a checkpoint location dann can use"),
    ("s3://A_Bucket/models", "'A_Bucket' is not an S3 bucket name"),
])
def test_a_checkpoint_location_dann_cannot_use_is_one_line(url, problem):
    with pytest.raises(Exception, match=f"setting DANN_CHECKPOINT_DIR: .*{problem}"):
        load_settings(checkpoint_dir=url)


def test_commands_that_write_versions_outside_the_trainer_refuse_a_bucket(capsys, tmp_path):
    code, _, err = run_main(capsys, "train", str(tmp_path / "posts.txt"), "--checkpoint-dir", "s3://my-voice/models")
    assert_one_line_error(code, err, "dann train writes to a local folder", "s3://my-voice/models")


def test_the_trainer_with_its_bucket_out_of_reach_stops_in_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "posts.txt").write_text("a post\n" * 50)
    monkeypatch.setenv("DANN_EXPORT_PATH", str(tmp_path / "posts.txt"))
    monkeypatch.setenv("DANN_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DANN_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DANN_S3_SECRET_ACCESS_KEY", S3_KEYS["secret_access_key"])
    monkeypatch.setenv("DANN_S3_ACCESS_KEY_ID", S3_KEYS["access_key_id"])
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", "s3://my-voice/models")
    code, _, err = run_main(capsys, "trainer", "--once")
    assert_one_line_error(code, err, "cannot read the manifest of s3://my-voice/models")
    assert S3_KEYS["secret_access_key"] not in err
