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


def test_a_prompt_or_context_holding_a_blocked_or_forgotten_term_is_refused(tmp_path):
    from dann.serving.service import GenerationService
    from dann.voice.blocklist import Blocklist
    from dann.voice.request import RequestError

    forget = ForgetList(store_beside(tmp_path))
    forget.add("my secret plan")
    filters = Filters(Blocklist(["dishwasher"]), forget)
    service = GenerationService(tmp_path, filters=filters)
    service.current, service._work = object(), asyncio.Event()  # as if started: refused before any queueing
    for request, problem in [(GenerationRequest("post", "dishwasherndd"), "the prompt holds a blocked term"),
                             (GenerationRequest("reply", "ok", context=("hi", "a DISHWASHER!")),
                              "the context holds a blocked term"),
                             (GenerationRequest("post", "mysecretplan B"), "the prompt holds a phrase dann was asked")]:
        try:
            asyncio.run(service.generate(request))
        except RequestError as error:
            assert str(error).startswith(problem) and "\n" not in str(error)
        else:
            raise AssertionError(f"{request} was not refused")
    assert filters.refusal(GenerationRequest("post", "the dishes were washed")) is None


def test_a_fallback_never_holds_a_blocked_term_even_inside_a_word():
    from dann.voice.bestof import choose
    from dann.voice.blocklist import Blocklist

    filters = Filters(Blocklist(["dishwasher"]))
    # Both are gibberish (far below the model's real-post log-probability): only fallbacks are left.
    picked, tally = choose([("dishwasherndd we", -9.0)], index=None, val_loss=1.0, max_chars=40, filters=filters)
    assert picked is None  # then the request is drawn again, or gets the safe line
    picked, _ = choose([("dishwasherndd we", -9.0), ("plain words now", -9.5)], index=None, val_loss=1.0,
                       max_chars=40, filters=filters)
    assert picked == 1
