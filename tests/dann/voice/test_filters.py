"""The filters on the serving path: a phrase forgotten while the service runs is never served
again, by a model that says little else."""

import asyncio

from dann.serving.service import GenerationService
from dann.state import store_beside
from dann.voice.filters import Filters
from dann.voice.forget import ForgetList
from dann.voice.request import GenerationRequest
from tests.dann.serving import MAX_CHARS, serving_copy


def test_a_forgotten_phrase_is_never_served_again_even_by_a_model_that_always_says_it(trained_dir, tmp_path):
    directory = serving_copy(trained_dir, tmp_path)  # the model says "good morning friends" or "lol same"
    forget = ForgetList(store_beside(directory))

    async def posts(service, count=12):
        texts = []
        for seed in range(count):
            texts += (await service.generate(GenerationRequest("post", temperature=0.4, seed=seed))).texts
        return texts

    async def scenario():
        service = GenerationService(directory, max_chars=MAX_CHARS, filters=Filters(None, ForgetList(store_beside(directory))))
        await service.start()
        try:
            before = await posts(service)
            ForgetList(store_beside(directory)).add("Good  morning!")  # another process's list: the service rereads the file
            after = await posts(service)
            return before, after, service.tally
        finally:
            await service.stop()

    before, after, tally = asyncio.run(scenario())
    assert sum("good morning" in text for text in before) >= 6
    assert not any("good morning" in text.lower() for text in after)
    assert tally.forgotten > 0
    assert forget.phrases() == ["Good morning!"]
