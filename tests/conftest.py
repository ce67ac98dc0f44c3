"""Shared fixtures: tiny corpora and a tiny trained checkpoint, so tests run in seconds on a CPU."""

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lstm.schema import ModelSpec, RunConfig, TrainConfig
from trainer.corpus import Corpus, Record

# pytest rewrites the asserts of test modules and conftest files only; the helpers modules too, so that a
# failing assert in one shows the values it compared.
pytest.register_assert_rewrite("tests.helpers", "tests.servers", "tests.bot.helpers", "tests.trainer.helpers", "tests.web.helpers")

TINY_MODEL = {"hidden": 64, "layers": 1}


def pytest_configure(config):
    """One compilation cache for the run, shared by the tests in this process, by every `dann`
    subprocess they start and by pytest-xdist's workers (all inherit the environment of the
    process that made it): a program compiles once per run, not once per worker."""
    worker = hasattr(config, "workerinput")
    if worker and os.environ.get("DANN_TEST_JAX_CACHE"):
        directory = os.environ["DANN_TEST_JAX_CACHE"]  # the controller's: it removes it at the end
    else:
        directory = config.dann_jax_cache = tempfile.mkdtemp(prefix="dann-test-jax-")
        os.environ["DANN_TEST_JAX_CACHE"] = directory
    os.environ["DANN_JAX_CACHE_DIR"] = directory
    # The LSTM's CPU kernel is built once per run too, beside the compiled programs.
    os.environ["DANN_NATIVE_DIR"] = os.path.join(directory, "native")
    # The tests' programs are tiny: LLVM's optimisation passes cost far more time than they save.
    # Read when JAX starts its CPU backend, so it reaches every `dann` subprocess too.
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip()
    # And so every program is worth a cache file: a `dann` process would compile each again.
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    from dann.process import use_compilation_cache

    use_compilation_cache(directory)


def pytest_unconfigure(config):
    if getattr(config, "dann_jax_cache", None):
        shutil.rmtree(config.dann_jax_cache, ignore_errors=True)


class Clock:
    """A clock the test moves by hand: set `now`, and whatever reads the clock sees it."""

    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self):
        return self.now


def repeated_corpus(text: str, copies: int = 200) -> Corpus:
    """Many identical posts: a model that can learn reproduces `text` exactly."""
    return Corpus(format="test", records=[Record("post", text) for _ in range(copies)])


def run_config(model_options: dict, config: TrainConfig) -> RunConfig:
    """A RunConfig of exactly these options, without the size or device layers."""
    return RunConfig(model=ModelSpec(**model_options), train=config)


def fit(corpus: Corpus, model_options: dict, config: TrainConfig, directory, *, resume: bool = True):
    """`dann train` in process: prepare, continue from the directory's latest version when it fits,
    and train, saving each improvement. Returns the TrainResult."""
    from trainer.data import prepare
    from trainer.train import latest_start, train

    run = run_config(model_options, config)
    data = prepare(corpus, config)
    start = latest_start(directory, data, run) if resume else None
    return train(data, run, directory, start=start, progress=False)


def tiny_config(**overrides) -> TrainConfig:
    options = dict(batch_size=16, seq_len=32, learning_rate=1e-2, warmup_steps=10, minutes=None,
                   max_steps=200, eval_every=100, min_char_count=1)
    return TrainConfig(**{**options, **overrides})


def built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """A folder `build(folder)` fills once per run: by the first pytest-xdist worker that needs it,
    while the others wait for it, then share it. Tests read it, or copy it before they change it."""
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # the run's folder, above each worker's
    directory = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{name}.done").exists():
            shutil.rmtree(directory, ignore_errors=True)  # what a worker that failed midway left
            build(directory)
            (root / f"{name}.done").touch()
    return directory


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, worker_id):
    """A checkpoint directory holding one small model trained on posts and replies."""
    records = [Record("post", "good morning friends") for _ in range(80)]
    records += [Record("reply", "lol same") for _ in range(80)]
    return built_once(tmp_path_factory, worker_id, "trained-ckpt", lambda directory: fit(
        Corpus("test", records), TINY_MODEL, tiny_config(max_steps=150, eval_every=150), directory))


@pytest.fixture
async def service(trained_dir, tmp_path):
    """A running generation service on a private copy of `trained_dir`, polling every 50 ms, with
    the forget list of that copy as its filter (as service_for gives it)."""
    from dann.serving.service import GenerationService
    from dann.state import store_beside
    from dann.voice.filters import Filters
    from dann.voice.forget import ForgetList
    from tests.dann.serving import MAX_CHARS, serving_copy

    directory = serving_copy(trained_dir, tmp_path)
    service = GenerationService(directory, max_chars=MAX_CHARS, poll_s=0.05, filters=Filters(forget=ForgetList(store_beside(directory))))
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def asked(service, monkeypatch):
    """Every GenerationRequest made of `service`, in order."""
    requests = []
    real = service.generate

    async def generate(request, **options):
        requests.append(request)
        return await real(request, **options)

    monkeypatch.setattr(service, "generate", generate)
    return requests


# --- real servers on 127.0.0.1 (tests/servers.py) -----------------------------------------------


@pytest.fixture
def redis_url(tmp_path):
    from tests.servers import redis_server

    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server per test process; each test makes its own bucket (`new_bucket`)."""
    from tests.servers import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster per test process; each test makes its own database (`new_database`)."""
    from tests.servers import Postgres, needs_postgres

    if needs_postgres.args[0]:
        pytest.skip(needs_postgres.kwargs["reason"])
    server = Postgres().start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def state_url(request, tmp_path):
    """A fresh state database: SQLite in tmp_path, and (in the slow tier) a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres").new_database()
