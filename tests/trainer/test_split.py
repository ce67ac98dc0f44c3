"""The split deployment: real `dann trainer` processes publish to a bucket on moto's S3 server, and
a bot-side generation service in this process picks each version up from it; a trainer killed
with SIGKILL mid-upload leaves readers on the previous version, and the next run recovers. A bot,
a web page and a trainer in three processes share one forget list in PostgreSQL."""

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from dann.serving.service import GenerationService
from dann.settings import Settings
from dann.state.bucket import Bucket
from dann.voice.request import GenerationRequest
from lstm import checkpoint
from lstm.schema import RunRecord
from tests.conftest import run_config, tiny_config
from tests.dann.serving import MAX_CHARS
from tests.servers import PG_PASSWORD, S3_KEYS, Postgres, SlowLink, needs_postgres
from tests.trainer.helpers import DANN, config_file, trainer_env, write_export
from trainer.retrain import retrain

pytestmark = pytest.mark.slow  # trains in three processes


def retrains(settings, config, database_url: str, folder) -> dict:
    """The environment of a `dann trainer` process that trains `config` (what the test trained
    in-process, so its programs are compiled) on the state database at `database_url`, publishing
    whatever it trains."""
    return {**trainer_env(settings, "0.05"), "DANN_DATABASE_URL": database_url, "DANN_PUBLISH_EVAL_SAMPLES": "0",
            "DANN_TRAIN_CONFIG": str(config_file(config, folder / "same_as_run.json")), "DANN_PROMOTE_TOLERANCE": "100"}


async def wait_until(condition, timeout=120.0, every=0.02) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(every)
    return False


async def test_a_trainer_killed_mid_upload_leaves_readers_on_the_last_version_and_the_next_run_publishes(
        s3_server, tmp_path):
    name = s3_server.new_bucket()
    url = f"s3://{name}/voice"
    keys = {"s3_access_key_id": S3_KEYS["access_key_id"], "s3_secret_access_key": S3_KEYS["secret_access_key"]}
    settings = Settings(_env_file=None, export_path=write_export(tmp_path / "posts.txt"), checkpoint_dir=url,
                        checkpoint_cache=tmp_path / "trainer-host", s3_endpoint_url=s3_server.url,
                        publish_eval_samples=0, keep_versions=3, **keys)
    # Version 1, a poor model (one step), so that the trainer processes' models are published.
    assert retrain(settings, run_config({"hidden": 32}, tiny_config(max_steps=1))).outcome == "published"
    # The trainer processes train the same model longer: the programs are compiled, and the reader's
    # sampler serves version 2 without compiling anew.
    same_model = config_file(run_config({"hidden": 32}, tiny_config(max_steps=60)), tmp_path / "same_model.json")

    reader_cache = tmp_path / "serving-host"
    service = GenerationService(reader_cache, bucket=Bucket(url, reader_cache, endpoint_url=s3_server.url, **S3_KEYS),
                                poll_s=0.2, max_chars=MAX_CHARS)
    await service.start()
    try:
        assert service.current.version == 1

        # No samples measured at publish time: what is tested here is the upload, not the voice.
        env = {**trainer_env(settings, "0.05"), "DANN_CHECKPOINT_DIR": url, "DANN_PUBLISH_EVAL_SAMPLES": "0",
               "DANN_CHECKPOINT_CACHE": str(tmp_path / "trainer-host"), "DANN_S3_ACCESS_KEY_ID": S3_KEYS["access_key_id"],
               "DANN_S3_SECRET_ACCESS_KEY": S3_KEYS["secret_access_key"], "DANN_TRAIN_CONFIG": str(same_model)}
        write_export(settings.export_path, "\nchanged since version 1")
        link = SlowLink(s3_server.port, delay_s=0.05)  # every request slowed: the upload takes seconds
        trainer = subprocess.Popen([*DANN, "trainer", "--once"], env={**env, "DANN_S3_ENDPOINT_URL": link.url},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        uploading = await wait_until(lambda: s3_server.keys(name, "voice/versions/2/") or trainer.poll() is not None)
        os.kill(trainer.pid, signal.SIGKILL)
        await asyncio.to_thread(trainer.wait)
        link.close()
        assert uploading and trainer.returncode == -signal.SIGKILL, trainer.stderr.read().decode()[-2000:]
        manifest = json.loads(s3_server.client().get_object(Bucket=name, Key="voice/manifest.json")["Body"].read())
        assert [v["version"] for v in manifest["versions"]] == [1]  # the killed upload never reached the manifest
        await asyncio.sleep(1.0)  # five polls
        assert service.current.version == 1 and checkpoint.versions(reader_cache) == [1]
        answer = await service.generate(GenerationRequest("post"))
        assert answer.model_version == 1

        trainer = subprocess.Popen([*DANN, "trainer", "--once"], env={**env, "DANN_S3_ENDPOINT_URL": s3_server.url},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.to_thread(trainer.communicate, timeout=300)
        assert trainer.returncode == 0, err.decode()[-2000:]
        assert json.loads(out.decode().splitlines()[-1])["outcome"] == "published", out.decode()
        assert "was never published" in err.decode()  # the killed run's local version, cleaned up
        assert await wait_until(lambda: service.current.version == 2, timeout=30)
        report = service.current.record.report  # the run's report came along: the page's loss curve
        assert report and (reader_cache / report / "loss.png").is_file()
        manifest = json.loads(s3_server.client().get_object(Bucket=name, Key="voice/manifest.json")["Body"].read())
        newest = manifest["versions"][0]
        assert newest["version"] == 2
        assert s3_server.keys(name, "voice/versions/2/") == sorted(
            [f"voice/versions/2/{f}" for f in newest["files"]] + [f"voice/versions/2/.report/{f}"
                                                                  for f in newest["report_files"]])
    finally:
        await service.stop()


def test_a_bucket_lost_before_publishing_keeps_the_new_version_unpublished_and_says_why(s3_server, tmp_path,
                                                                                       monkeypatch):
    import trainer.retrain

    name = s3_server.new_bucket()
    link = SlowLink(s3_server.port, delay_s=0.0)
    settings = Settings(_env_file=None, export_path=write_export(tmp_path / "posts.txt"),
                        checkpoint_dir=f"s3://{name}/voice", checkpoint_cache=tmp_path / "trainer-host",
                        s3_endpoint_url=link.url, publish_eval_samples=0, keep_versions=3,
                        s3_access_key_id=S3_KEYS["access_key_id"], s3_secret_access_key=S3_KEYS["secret_access_key"])
    config = run_config({"hidden": 32}, tiny_config(max_steps=1))
    assert retrain(settings, config).outcome == "published"

    train = trainer.retrain.train

    def train_then_lose_the_bucket(*args, **kwargs):
        result = train(*args, **kwargs)
        link.cut()
        return result

    monkeypatch.setattr(trainer.retrain, "train", train_then_lose_the_bucket)
    write_export(settings.export_path, "\nchanged since version 1")
    result = retrain(settings, run_config({"hidden": 32}, tiny_config(max_steps=60)))
    assert result.outcome == "rejected" and result.version == 1
    assert result.reason.startswith("cannot ") and f" s3://{name}/voice: " in result.reason, result.reason
    assert result.reason.endswith("the bucket still serves version 1") and "\n" not in result.reason
    assert S3_KEYS["secret_access_key"] not in result.reason
    assert checkpoint.versions(settings.checkpoint_dir) == [1]  # the unpublished copy is gone
    manifest = json.loads(s3_server.client().get_object(Bucket=name, Key="voice/manifest.json")["Body"].read())
    assert [v["version"] for v in manifest["versions"]] == [1]


def test_a_phrase_forgotten_through_a_bot_process_on_postgresql_leaves_the_web_process_and_the_next_run(
        postgres, tmp_path):
    """One state database for three processes: the bot's owner forgets a phrase, a running web page
    stops serving it at once, and the next `dann trainer` run trains without the post holding it."""
    from tests.trainer.test_retrain import SECRET
    from tests.web.conftest import web_server

    url = postgres.new_database()
    settings = Settings(_env_file=None, export_path=write_export(tmp_path / "posts.txt", f"\n{SECRET}"),
                        checkpoint_dir=tmp_path / "serving", database_url=url, publish_eval_samples=0)
    config = run_config({"hidden": 32}, tiny_config(max_steps=20))
    assert retrain(settings, config).outcome == "published"
    before = checkpoint.load_latest(settings.checkpoint_dir)
    assert before.copy_index.copies(SECRET)

    with web_server(settings.checkpoint_dir, tmp_path / "web.log", database_url=url, temperature=0.05) as (_, web):
        def ask():
            return httpx.post(web + "/api/generate", json={"prompt": "the green hall"}, timeout=60)

        served = ask()
        assert served.status_code == 200 and served.json()["texts"][0].startswith("the green hall"), served.text
        bot = subprocess.run([sys.executable, "-m", "tests.bot.owner_forgets", "Green HALL"], capture_output=True,
                             text=True, timeout=300, env={**os.environ, "DANN_CHECKPOINT_DIR": str(settings.checkpoint_dir),
                                                          "DANN_DATABASE_URL": url, "JAX_PLATFORMS": "cpu"})
        assert bot.returncode == 0 and bot.stdout.startswith("Forgotten"), bot.stderr[-2000:]
        refused = ask()
    assert refused.status_code == 422 and "asked to forget" in refused.json()["detail"], refused.text

    trainer = subprocess.run([*DANN, "trainer", "--once"], capture_output=True, text=True, timeout=300,
                             env=retrains(settings, config, url, tmp_path))
    assert trainer.returncode == 0, trainer.stderr[-2000:]
    assert json.loads(trainer.stdout.splitlines()[-1])["outcome"] == "published", trainer.stdout
    after = checkpoint.load_latest(settings.checkpoint_dir)
    assert after.version == before.version + 1 and not after.copy_index.copies(SECRET)
    assert RunRecord.of(after).records == RunRecord.of(before).records - 1


@needs_postgres
def test_a_state_database_out_of_reach_stops_the_trainer_in_one_line_and_the_next_run_recovers(tmp_path):
    """The trainer reads the forget list from the state database before it trains: with the
    database gone it refuses in one line and writes no version; once it is back, the next run
    trains without what was forgotten, and nothing in the database was lost."""
    from dann.state import Store
    from dann.voice.forget import ForgetList

    server = Postgres().start()
    try:
        url = server.new_database()
        settings = Settings(_env_file=None, export_path=write_export(tmp_path / "posts.txt"),
                            checkpoint_dir=tmp_path / "serving", database_url=url, publish_eval_samples=0)
        config = run_config({"hidden": 32}, tiny_config(max_steps=20))
        assert retrain(settings, config).outcome == "published"
        first = checkpoint.load_latest(settings.checkpoint_dir)
        ForgetList(Store(url)).add("lol same")
        env = retrains(settings, config, url, tmp_path)

        server.stop()
        refused = subprocess.run([*DANN, "trainer", "--once"], env=env, capture_output=True, text=True, timeout=300)
        last = refused.stderr.strip().splitlines()[-1]
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert last.startswith("dann: ") and "state database" in last and PG_PASSWORD not in refused.stderr, last
        assert checkpoint.versions(settings.checkpoint_dir) == [first.version]

        server.resume()
        recovered = subprocess.run([*DANN, "trainer", "--once"], env=env, capture_output=True, text=True, timeout=300)
        assert recovered.returncode == 0, recovered.stderr[-2000:]
        assert json.loads(recovered.stdout.splitlines()[-1])["outcome"] == "published", recovered.stdout
        after = checkpoint.load_latest(settings.checkpoint_dir)
        assert after.version == first.version + 1
        assert RunRecord.of(after).records == RunRecord.of(first).records - 40  # the 40 "lol same N" posts
        assert ForgetList(Store(url)).phrases() == ["lol same"]
    finally:
        server.close()
