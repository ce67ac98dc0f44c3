"""The bot tests' shared fixture: a running generation service over a private copy of the tiny model."""

import pytest

from dann.serving.service import GenerationService
from tests.dann.serving import MAX_CHARS, serving_copy


@pytest.fixture
async def service(trained_dir, tmp_path):
    service = GenerationService(serving_copy(trained_dir, tmp_path), max_chars=MAX_CHARS, poll_s=0.05)
    await service.start()
    yield service
    await service.stop()
