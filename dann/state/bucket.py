"""Checkpoints in an S3-compatible bucket: DANN_CHECKPOINT_DIR=s3://bucket/prefix.

Every process still works on a local checkpoint folder (DANN_CHECKPOINT_CACHE, one per bucket and
prefix), so everything that reads a version reads it as before; this module moves versions
between that folder and the bucket.

    <prefix>/versions/<N>/...   one published version: the files of the local folder's <N>/
    <prefix>/manifest.json      the versions kept, newest first: written last, read first

- **Publishing** (the trainer only): the version's files go up first, then the manifest naming
  it, then the versions the manifest no longer names are deleted. An object store has no rename,
  but writing one object is atomic: a reader sees the old manifest or the new one, so it never
  sees half a version, and a trainer killed mid-upload leaves the previous manifest in force. Its
  next run deletes what the killed upload left (the bucket's files of that number, and the local
  version that was never published) and publishes under the same number.
- **Reading** (the bot, the web page, the poster, `dann sample`): `refresh` reads the manifest and,
  when it names a version the cache lacks, downloads its files into a hidden folder, checks their
  sizes against the manifest, and renames the folder to `<N>`, which is when the service's poll
  sees it and swaps it in. A bucket that cannot be reached leaves the cache as it is: the model in
  memory keeps serving, and the next try waits 30 s, then twice as long each time, up to 10 min.

Any failure raises BucketError with one line naming the bucket and what failed; credentials
never appear in it.
"""

import json
import logging
import shutil
import time
from pathlib import Path

import botocore.exceptions

from dann.settings import bucket_url
from lstm.checkpoint import versions
from lstm.errors import DannError

MANIFEST = "manifest.json"
REPORT = ".report"  # a version's run report, under the version's prefix
FORMAT = 1
RETRY_FIRST_S, RETRY_MAX_S = 30.0, 600.0
# What a call to the bucket raises when it fails: the server's answer, the client's own (no
# connection, a timeout, no credentials), or the local file it reads or writes.
FAILURES = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError)
KEEP_CACHED = 2  # versions a reader keeps in its cache: the one served and the one before
log = logging.getLogger("dann.bucket")


class BucketError(DannError):
    """The bucket cannot be reached, or holds something dann did not write."""

    public = "dann cannot reach its checkpoint bucket right now; its operator's log says why"


def bucket_for(settings) -> "Bucket | None":
    """The bucket the settings name, or None for a local checkpoint folder."""
    url = getattr(settings, "checkpoint_url", None)
    if url is None:
        return None

    def secret(name):
        value = getattr(settings, name, None)
        return value.get_secret_value() if value is not None else None

    return Bucket(url, settings.checkpoint_dir, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                  access_key_id=secret("s3_access_key_id"), secret_access_key=secret("s3_secret_access_key"))


def _sizes(folder: Path) -> dict[str, int]:
    """{path relative to `folder`: size} of every file below it."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def local_folder(settings) -> Path:
    """The checkpoint folder to read, for the commands that read once (`dann sample`, `dann status`):
    with a bucket, its mirror with the newest published version brought in (a bucket out of reach
    is one log line, and the mirror's newest version is read)."""
    bucket = bucket_for(settings)
    if bucket is not None:
        bucket.refresh()
    return Path(settings.checkpoint_dir)


def local_only(settings, command: str) -> Path:
    """The checkpoint folder of a command that writes versions outside the trainer: a bucket is one line."""
    if getattr(settings, "checkpoint_url", None):
        raise DannError(f"{command} writes to a local folder; versions reach {settings.checkpoint_url} through "
                        "the trainer (`dann trainer --once`): give --checkpoint-dir a folder")
    return Path(settings.checkpoint_dir)


class Bucket:
    def __init__(self, url: str, cache, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None):
        self.url = url
        self.name, self.prefix = bucket_url(url)
        self.cache = Path(cache)
        import boto3  # here: a quarter of a second to import, for the processes that use a bucket only
        import botocore.config
        # Credentials given to dann win; without them boto3's own chain applies (AWS_* variables,
        # ~/.aws, an instance's role). Short timeouts and two attempts: a reader that cannot reach
        # the bucket should say so within seconds and keep serving, not hang its poll.
        if (access_key_id is None) != (secret_access_key is None):
            raise BucketError("DANN_S3_ACCESS_KEY_ID and DANN_S3_SECRET_ACCESS_KEY are set together, or neither "
                              "(then boto3 finds credentials itself)")
        try:
            self.client = boto3.client(
                "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
                aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                config=botocore.config.Config(connect_timeout=5, read_timeout=60,
                                              retries={"max_attempts": 2, "mode": "standard"}))
        except (botocore.exceptions.BotoCoreError, ValueError) as error:  # a malformed endpoint URL, say
            raise BucketError(f"cannot use {url}: {error}") from None
        self._failures = 0
        self._next_try = 0.0

    def key(self, *parts) -> str:
        return "/".join(p for p in (self.prefix, *map(str, parts)) if p)

    def _failure(self, doing: str, error: Exception) -> BucketError:
        if isinstance(error, botocore.exceptions.ClientError):
            detail = error.response.get("Error", {})
            return BucketError(f"cannot {doing} {self.url}: {detail.get('Code', '?')} "
                               f"({detail.get('Message') or 'no message'})")
        return BucketError(f"cannot {doing} {self.url}: {error}")

    def _call(self, doing: str, method, **kwargs):
        try:
            return method(Bucket=self.name, **kwargs)
        except FAILURES as error:
            raise self._failure(doing, error) from None

    # --- the manifest -----------------------------------------------------------------------

    def manifest(self) -> dict | None:
        """The manifest, or None before the first version is published."""
        try:
            body = self.client.get_object(Bucket=self.name, Key=self.key(MANIFEST))["Body"].read()
        except FAILURES as error:
            if isinstance(error, botocore.exceptions.ClientError) and \
                    error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._failure("read the manifest of", error) from None
        try:
            manifest = json.loads(body)
            if manifest["format"] != FORMAT or not isinstance(manifest["versions"], list):
                raise ValueError(f"format {manifest['format']}")
            for entry in manifest["versions"]:
                int(entry["version"]), dict(entry["files"]), dict(entry.get("report_files", {}))
                report = entry.get("report")
                if report is not None and (not isinstance(report, str) or Path(report).is_absolute()
                                           or ".." in Path(report).parts):
                    raise ValueError(f"report {report!r}")
        except (ValueError, KeyError, TypeError) as error:
            raise BucketError(f"{self.url}/{MANIFEST} is not a manifest this dann wrote ({error}); "
                              "a newer dann may have written it") from None
        return manifest

    @staticmethod
    def newest(manifest: dict | None) -> int | None:
        return manifest["versions"][0]["version"] if manifest and manifest["versions"] else None

    # --- reading ----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """For readers: bring the newest published version into the cache unless a try failed
        lately. Never raises: a failure is logged in one line and tried again with backoff.
        Returns whether a version was downloaded."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        try:
            fetched = self.pull()
        except BucketError as error:
            self._failures += 1
            wait = min(RETRY_FIRST_S * 2 ** (self._failures - 1), RETRY_MAX_S)
            self._next_try = now + wait
            have = versions(self.cache)
            log.warning("%s; %s; trying again in %.0f s", error,
                        f"keeping version {have[0]}" if have else "no model yet", wait)
            return False
        if self._failures:
            log.info("%s is reachable again", self.url)
        self._failures, self._next_try = 0, 0.0
        return fetched

    def pull(self) -> bool:
        """Download the manifest's newest version into the cache if it is not there yet."""
        manifest = self.manifest()
        newest = self.newest(manifest)
        if newest is None or (self.cache / str(newest)).is_dir():
            return False
        entry = manifest["versions"][0]
        partial = self.cache / f".{newest}.download"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            self._download_all(entry["files"], partial, ("versions", newest), newest)
            report = entry.get("report")
            if report and not (self.cache / report).exists():  # the loss curve the web page shows
                self._download_all(entry["report_files"], self.cache / f".{newest}.report",
                                   ("versions", newest, REPORT), newest)
            partial.rename(self.cache / str(newest))
            if report and (self.cache / f".{newest}.report").is_dir():
                (self.cache / report).parent.mkdir(parents=True, exist_ok=True)
                (self.cache / f".{newest}.report").rename(self.cache / report)
        except OSError as error:
            raise BucketError(f"cannot write version {newest} into the cache {self.cache}: "
                              f"{error.strerror or error}") from None
        finally:
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(self.cache / f".{newest}.report", ignore_errors=True)
        log.info("downloaded version %d from %s", newest, self.url)
        for old in versions(self.cache)[KEEP_CACHED:]:
            shutil.rmtree(self.cache / str(old), ignore_errors=True)
        return True

    def _download_all(self, files: dict, folder: Path, key: tuple, version: int) -> None:
        """Download `files` ({name: size}) from the prefix `key` into `folder`, checking each size."""
        for name, size in files.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise BucketError(f"{self.url}: version {version} names a file outside it ({name!r})")
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            self._call(f"download version {version} from", self._download(target), Key=self.key(*key, name))
            if target.stat().st_size != size:
                raise BucketError(f"{self.url}: {name} of version {version} has {target.stat().st_size} bytes, "
                                  f"the manifest says {size}")

    def _download(self, target: Path):
        def download(Bucket, Key):  # noqa: N803 - the client's own argument names
            with open(target, "wb") as out:
                self.client.download_fileobj(Bucket, Key, out)
        return download

    # --- publishing (the trainer) -----------------------------------------------------------

    def prepare(self) -> int | None:
        """For the trainer, before a run: the newest published version brought into the cache, and
        local versions the bucket never got (a run killed mid-upload) removed, so that the run
        compares against and numbers after what readers see. Returns the newest published version."""
        self.cache.mkdir(parents=True, exist_ok=True)
        manifest = self.manifest()
        newest = self.newest(manifest)
        if newest is None:  # nothing published yet: the folder's own versions (if any) are the start
            return None
        for version in versions(self.cache):
            if version > newest:
                log.warning("version %d in %s was never published to %s (a run stopped mid-upload): removing it",
                            version, self.cache, self.url)
                shutil.rmtree(self.cache / str(version))
        self.pull()
        return newest

    def publish(self, version: int, keep: int, report: str | None = None) -> None:
        """Upload the cache's `version` (and its run's `report` folder, a path relative to the
        cache, for the web page's loss curve), then the manifest naming it, then prune what it no
        longer names. Raises BucketError, with the previous manifest still in force, if any step
        before the manifest fails."""
        folder = self.cache / str(version)
        files = _sizes(folder)
        reported = _sizes(self.cache / report) if report else {}
        previous = self.manifest()
        self._delete_under(self.key("versions", version) + "/")  # what a killed upload of this number left
        for name in files:
            self._call(f"upload version {version} to", self._upload(folder / name),
                       Key=self.key("versions", version, name))
        for name in reported:  # inside the version's prefix, so that it is pruned with it
            self._call(f"upload the report of version {version} to", self._upload(self.cache / report / name),
                       Key=self.key("versions", version, REPORT, name))
        kept = [{"version": version, "files": files, "published_at": time.time()}
                | ({"report": report, "report_files": reported} if reported else {})]
        kept += [e for e in (previous or {"versions": []})["versions"] if e["version"] != version][:max(keep - 1, 0)]
        body = json.dumps({"format": FORMAT, "versions": kept}, indent=1).encode()
        self._call("write the manifest of", self.client.put_object, Key=self.key(MANIFEST), Body=body,
                   ContentType="application/json")
        log.info("published version %d to %s", version, self.url)
        names = {str(e["version"]) for e in kept}
        try:
            for found in self._version_prefixes():
                if found not in names:
                    self._delete_under(self.key("versions", found) + "/")
        except BucketError as error:  # published: old versions left behind are pruned next time
            log.warning("%s; the old versions are pruned at the next publish", error)

    def _upload(self, path: Path):
        def upload(Bucket, Key):  # noqa: N803
            self.client.upload_file(str(path), Bucket, Key)
        return upload

    def _version_prefixes(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self.key("versions") + "/", Delimiter="/")
        found = []
        try:
            for page in pages:
                found += [p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in page.get("CommonPrefixes", [])]
        except FAILURES as error:
            raise self._failure("list the versions in", error) from None
        return found

    def _delete_under(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        try:
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.name, Delete={"Objects": keys, "Quiet": True})
        except FAILURES as error:
            raise self._failure(f"delete {prefix} in", error) from None
