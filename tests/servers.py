"""Real servers on 127.0.0.1 for the split deployment's tests, each on a free port and in a
temporary folder, stopped when the test ends:

- Redis: Debian's redis-server (the `limits` library's shared storage).
- An S3-compatible object store: moto's server mode (`moto_server`, a real HTTP server speaking the
  S3 API). MinIO, the usual local S3, is not packaged in Debian or on PyPI; moto is, and is
  maintained as the AWS SDKs' test double.
- PostgreSQL: Debian's postgresql package, run as the `postgres` user when the tests run as root
  (initdb and postgres refuse root), with password authentication.
- A slow link: a TCP relay that holds every chunk a client sends for a moment, so that a real
  upload takes long enough for a test to kill the uploader in the middle of it.
"""

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

S3_KEYS = {"access_key_id": "dann-test-key", "secret_access_key": "dann-test-secret-value"}
PG_PASSWORD = "pg-secret-value-7f3a"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert process.poll() is None, f"{name} exited with {process.returncode}"
            assert time.monotonic() < deadline, f"{name} did not start within {timeout:.0f} s"
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs Debian's redis-server (.ci/run installs it)")
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
needs_postgres = pytest.mark.skipif(not PG_BIN, reason="needs Debian's postgresql (.ci/run installs it)")


@contextlib.contextmanager
def redis_server(folder: Path):
    """A redis-server without persistence; yields its URL."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)


class S3Server:
    """moto's S3 server; `url` is its endpoint, `client()` a boto3 client with the test keys."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "S3Server":
        moto = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "moto_server")
        return self

    def stop(self) -> None:
        stop(self.process)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=S3_KEYS["access_key_id"],
                            aws_secret_access_key=S3_KEYS["secret_access_key"])

    def new_bucket(self) -> str:
        name = f"dann-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


class Postgres:
    """A PostgreSQL cluster in a temporary folder; `url(database)` names a database on it."""

    def __init__(self):
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dann-pg-"))
        self.process = None
        self.as_postgres = os.geteuid() == 0

    def _run(self, argv, **options):
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, **options)

    def start(self) -> "Postgres":
        data, password = self.folder / "data", self.folder / "password"
        bin_dir = Path(PG_BIN[-1])
        password.write_text(PG_PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
            shutil.chown(password, "postgres")
        self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", "dann", "--auth=scram-sha-256",
                   f"--pwfile={password}", "-E", "UTF8", "--no-sync"])
        return self.resume()

    def resume(self) -> "Postgres":
        """Start the server on its data folder (again, after `stop`)."""
        argv = [str(Path(PG_BIN[-1]) / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}", "-c", "fsync=off"]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "postgres")
        self._wait_until_accepting()
        return self

    def _wait_until_accepting(self, timeout: float = 60) -> None:
        """The port opens before recovery ends ("the database system is starting up"): wait for a
        session, as `pg_isready` would."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError as error:
                assert self.process.poll() is None, f"postgres exited with {self.process.returncode}"
                assert time.monotonic() < deadline, f"postgres accepted no session within {timeout:.0f} s: {error}"
                time.sleep(0.05)

    @property
    def admin_dsn(self) -> str:
        """psycopg's address of the cluster's own `postgres` database."""
        return f"postgresql://dann:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://dann:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = f"dann_{os.getpid()}_{time.monotonic_ns() % 10**9}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """A fast shutdown, as an operator's restart would do: open sessions are ended, not waited for."""
        if self.process is not None and self.process.poll() is None:
            self._run([str(Path(PG_BIN[-1]) / "pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "fast",
                       "-w"])
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class SlowLink:
    """A TCP relay to `ports` that holds each chunk a client sends for `delay_s`: uploads through it
    take long enough for a test to act in the middle of one. With several ports it balances the
    connections between them in turn, as a round-robin load balancer does. Its own port is `port`."""

    def __init__(self, *ports: int, delay_s: float = 0.05):
        self.targets, self.delay_s = itertools.cycle(ports), delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", next(self.targets)))
            self.open += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, self.delay_s), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, 0.0), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, delay_s: float) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """No new connections; those open go on."""
        self.listener.close()

    def cut(self) -> None:
        """The link goes down: no new connections, and those open are closed."""
        self.close()
        for end in self.open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
                end.close()
