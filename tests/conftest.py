"""Shared fixtures: tiny corpora and a tiny trained checkpoint, so tests run in seconds on a CPU."""

import os
import shutil
import tempfile

import pytest

from lstm.schema import ModelSpec, RunConfig, TrainConfig
from trainer.corpus import Corpus, Record

# pytest rewrites the asserts of test modules and conftest files only; the helpers modules too, so that a
# failing assert in one shows the values it compared.
pytest.register_assert_rewrite("tests.helpers", "tests.bot.helpers", "tests.trainer.helpers", "tests.web.helpers")

TINY_MODEL = {"hidden": 64, "layers": 1}


def pytest_configure(config):
    """One compilation cache for the run, shared by the tests in this process and by every `dann`
    subprocess they start (those inherit the environment): a program compiles once per run."""
    directory = tempfile.mkdtemp(prefix="dann-test-jax-")
    os.environ["DANN_JAX_CACHE_DIR"] = config.dann_jax_cache = directory
    from dann.process import use_compilation_cache

    use_compilation_cache(directory)


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "dann_jax_cache", ""), ignore_errors=True)


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


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """A checkpoint directory holding one small model trained on posts and replies."""
    records = [Record("post", "good morning friends") for _ in range(80)]
    records += [Record("reply", "lol same") for _ in range(80)]
    directory = tmp_path_factory.mktemp("ckpt")
    fit(Corpus("test", records), TINY_MODEL, tiny_config(max_steps=150, eval_every=150), directory)
    return directory


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
