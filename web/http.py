"""The page's HTTP vocabulary, shared by the app (web/app.py) and its routes (web/routes.py):
the request bodies, the one mapping of expected failures to HTTP answers, readable validation
errors, and the page itself."""

import asyncio
import contextlib
import html
import json
import logging
import math
from pathlib import Path
from typing import Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dann.serving.service import Busy, NotReady
from dann.serving.status import about
from dann.settings import WebSettings
from dann.voice.why import MAX_TEXT

log = logging.getLogger("dann.web")

STATIC = Path(__file__).parent / "static"
# The slider's range, and the API's: below 0.05 the voice loops on itself, above 2 it is noise.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 2.0
MAX_SEED = 2**31 - 1  # the service offsets seeds per candidate inside a uint32
# The page cannot load anything from elsewhere (the servers have no internet anyway), and a
# string that slips into the page as markup still cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
STILL_LEARNING = "dann is still learning: no model has been trained yet. Try again in a few minutes."



class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str = Field(max_length=64)
    pick: Literal["a", "b"]


class WhyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "temp" is an error, not silently ignored

    mode: Literal["post", "reply"] = "post"
    prompt: str = ""
    context: str | None = None  # the page's "reply to": the text the answer replies to
    temperature: float | None = Field(None, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False)
    n: int = Field(1, ge=1, strict=True)  # strict: true is not 1. The upper bound is a setting, checked in the handler
    seed: int | None = Field(None, ge=0, le=MAX_SEED, strict=True)


class Refused(Exception):
    """An answer other than 200 that a route decided on: its status, the one-line detail and headers."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


async def expected_failure(request: Request, error: Exception) -> JSONResponse:
    """The one mapping of the expected failures to HTTP: a JSON {"detail": one line}. Anything
    else is a bug: FastAPI answers 500 and the log keeps its traceback."""
    settings = request.app.state.settings
    if isinstance(error, Refused):
        return problem(error.status, error.detail, error.headers)
    if isinstance(error, ClientGone):
        return problem(499, "the client left before its answer was ready")  # nobody reads it
    if isinstance(error, NotReady):
        return problem(503, STILL_LEARNING, {"Retry-After": str(math.ceil(settings.reload_poll_s))})
    if isinstance(error, Busy):
        return problem(503, str(error), {"Retry-After": str(math.ceil(error.retry_after))})
    if error.public:  # the server's own trouble (its database): the detail, paths and all, is logged
        log.error("%s %s: %s", request.method, request.url.path, error)
        return problem(503, error.for_public(), {"Retry-After": "60"})
    return problem(422, str(error))  # a DannError: the request cannot be served as asked


SECURITY_HEADERS = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """The security headers on every response, the page, the API, static files and every refusal
    alike: pure ASGI, outermost, so that no route or other middleware can answer without them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                   *(h for h in SECURITY_HEADERS if h[0] not in names)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ClientGone(Exception):
    """The client disconnected while its request waited."""


async def unless_gone(request: Request, work):
    """Await `work` (a coroutine), or cancel it if the client disconnects first, so that the
    service withdraws the request before it is sampled. Raises ClientGone then."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # the service sees the cancellation and withdraws the request
        raise ClientGone
    return task.result()


async def _disconnect(request: Request) -> None:
    # The body has been read, so what receive() has left to say is that the client went away.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def problem(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def web_owner(settings: WebSettings) -> str | None:
    """How the page names who runs dann: Discord ids mean nothing on a web page."""
    return settings.owner_name or ("its owner on Discord" if settings.owner_ids else None)


def render_page(settings: WebSettings) -> str:
    """index.html with the settings' defaults filled in, so the form is right before any script runs."""
    default = min(max(settings.temperature, MIN_TEMPERATURE), MAX_TEMPERATURE)
    # What dann is, before the script replaces it with the served model's facts (escaped: the
    # names come from settings, which the page must never take as markup).
    disclosure = html.escape(about({"version": 0}, voice=settings.voice_name, owner=web_owner(settings))
                             .split("\n")[0])
    values = {"temperature": f"{default:.2f}", "min_temperature": MIN_TEMPERATURE,
              "max_temperature": MAX_TEMPERATURE, "max_candidates": settings.web_max_candidates,
              "max_prompt_chars": settings.max_prompt_chars, "about": disclosure}  # last: no later name in it
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", str(value))
    return page


# --- validation errors: one readable line instead of pydantic's list -----------------------------

# Each body's fields and an example of it, by path; /api/generate's for any other path.
BODIES = {
    "/api/game/vote": ("pair and pick", '{"pair": "…", "pick": "a"}'),
    "/api/why": ("text", '{"text": "what dann wrote"}'),
}
GENERATE_BODY = ("mode, prompt, context, temperature, n and seed",
                 '{"mode": "post", "prompt": "", "temperature": 0.4, "n": 1}')
ALLOWED = {
    "text": f"the text dann wrote, 1 to {MAX_TEXT} characters",
    "pick": "'a' or 'b'",
    "pair": "the id that /api/game/pair gave",
    "mode": "'post' or 'reply'",
    "prompt": "text",
    "context": "text (or null)",
    "temperature": f"a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE}",
    "n": "a whole number from 1 to {max_candidates}",
    "seed": f"a whole number from 0 to {MAX_SEED}",
}


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    settings = request.app.state.settings
    body = BODIES.get(request.url.path, GENERATE_BODY)
    lines = [describe(e, settings, body) for e in error.errors()]
    return problem(422, "; ".join(dict.fromkeys(lines)))  # each problem once, in order


def describe(error: dict, settings: WebSettings, body: tuple[str, str] = GENERATE_BODY) -> str:
    fields, example = body
    where = [str(part) for part in error.get("loc", ()) if part != "body"]
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error")
        return "the request body is not valid JSON" + (f" ({reason})" if reason else "")
    if not where and isinstance(error.get("input"), bytes):  # FastAPI parses JSON only when told it is JSON
        return "send the body as JSON, with the header Content-Type: application/json"
    if not where or error["type"] == "model_attributes_type":
        return f"the request body must be a JSON object such as {example}"
    field = where[0]
    if error["type"] == "missing":
        return f"{field} is missing; the fields are {fields}"
    if error["type"] == "extra_forbidden":
        return f"unknown field {field!r}; the fields are {fields}"
    if field in ALLOWED:
        allowed = ALLOWED[field].format(max_candidates=settings.web_max_candidates)
        return f"{field} must be {allowed}, got {json.dumps(error.get('input'), default=str)[:60]}"
    return f"{field}: {error['msg']}"


