"""A state database out of reach: the service keeps its model, refuses to serve unchecked texts in
one public line (fast, with backoff, not a connect timeout per request), and serves again by
itself once the database is back. A real PostgreSQL server is stopped and started again."""

import time

import pytest

from dann.serving.service import GenerationService
from dann.state import Store
from dann.voice.filters import Filters
from dann.voice.forget import ForgetList
from dann.voice.request import GenerationRequest
from lstm.errors import DannError
from tests.dann.serving import MAX_CHARS, serving_copy
from tests.servers import PG_PASSWORD, Postgres, needs_postgres

pytestmark = [pytest.mark.slow, needs_postgres]


async def test_a_database_out_of_reach_keeps_the_model_and_answers_again_when_it_is_back(trained_dir, tmp_path,
                                                                                        caplog):
    server = Postgres().start()
    try:
        forget = ForgetList(Store(server.new_database()))
        forget.add("secret plan")
        service = GenerationService(serving_copy(trained_dir, tmp_path), max_chars=MAX_CHARS, poll_s=0.05,
                                    filters=Filters(forget=forget))
        await service.start()
        try:
            assert (await service.generate(GenerationRequest("post"))).texts
            server.stop()
            began = time.monotonic()
            with pytest.raises(DannError) as failed:
                await service.generate(GenerationRequest("post"))
            assert failed.value.for_public() == "dann cannot reach its state database right now; its operator's " \
                                                "log says why"
            assert "\n" not in str(failed.value) and PG_PASSWORD not in str(failed.value)
            began = time.monotonic()
            with pytest.raises(DannError, match="out of reach"):  # within the backoff: no new connection tried
                await service.generate(GenerationRequest("post"))
            assert time.monotonic() - began < 0.5
            assert service.current is not None and service.current.version >= 1  # the model stays loaded

            server.resume()
            deadline = time.monotonic() + 40
            while True:
                try:
                    answer = await service.generate(GenerationRequest("post"))
                    break
                except DannError:
                    assert time.monotonic() < deadline, "still refused 40 s after the database came back"
                    time.sleep(0.5)
            assert answer.texts and forget.phrases() == ["secret plan"]
            assert PG_PASSWORD not in caplog.text
        finally:
            await service.stop()
    finally:
        server.close()
