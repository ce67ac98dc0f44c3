"""Settings and in-process clients for the playground's app, and reading its one-line error details."""

import asyncio
import contextlib

import httpx

from dann.settings import Settings


def make_settings(checkpoint_dir, **overrides) -> Settings:
    """The defaults pinned, so a DANN_ variable in the environment cannot change what a test expects.
    max_chars is the sampler's static length: one value across the web tests, one compile per batch size."""
    pinned = {"temperature": 0.4, "max_chars": 60, "max_prompt_chars": 500, "web_max_candidates": 8,
              "web_rate_per_minute": 30}
    return Settings(checkpoint_dir=checkpoint_dir, **{**pinned, **overrides})


@contextlib.asynccontextmanager
async def serving(app, lifespan=True, client=("127.0.0.1", 123)):
    """A client for `app`; with `lifespan`, the app's service is started first and stopped after."""
    transport = httpx.ASGITransport(app=app, client=client)
    async with contextlib.AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://dann.test"))


def request(app, method, url, **options) -> httpx.Response:
    """One request to an app whose service is not started (no model is needed to refuse a request)."""
    async def go():
        async with serving(app, lifespan=False) as client:
            return await client.request(method, url, **options)

    return asyncio.run(go())


def one_line(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail, detail
    return detail
