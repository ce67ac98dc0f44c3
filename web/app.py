"""The web playground: one page and a JSON API over the bot's generation service.

The API is a front end like the Discord bot: model loading, hot reload and request batching all
live in dann/serving's `GenerationService`, and this file only turns HTTP into service calls and
service answers (and refusals) into HTTP. It never imports discord. `run_web` serves it with uvicorn for `dann web`.

    POST /api/generate  {"mode", "prompt", "context"?, "temperature", "n", "seed"?} -> {"texts", "model_version", "ms"}
                        (each text begins with the prompt, except the short safe line best-of-n
                        answers when everything it drew copied or was refused; `context` is the
                        text being answered, primed as the bot primes a reply with a mention)
    GET  /api/status    the served model, whether a training plot exists, and the request limits
    GET  /api/plot.png  the trainer's loss curve for the served model's run
    POST /api/game/pair {} -> {"pair", "a", "b", "model_version"}: "Real or dann?" (DANN_WEB_GAME, game.py)
    POST /api/game/vote {"pair", "pick": "a" | "b"} -> {"correct", "real", "model_version", "tally"}
    GET  /healthz       200 while the process answers

Under load (docs/serving.md):
- Each client gets `DANN_WEB_RATE_PER_MINUTE` generations a minute, and everyone together
  `DANN_WEB_RATE_GLOBAL_PER_MINUTE` (rate_limit.py: clients behind DANN_WEB_TRUSTED_PROXIES,
  IPv6 by /64); past either, 429 with Retry-After.
- When the generation service's queue is full, or would not answer within its deadline, 503 with
  Retry-After; a client that disconnects while waiting has its request withdrawn unsampled.
- Bodies over a few KB are refused with 413, bodies that trickle in with 408 (body_limit.py);
  headers that trickle in close the connection (connections.py); connections are capped.
- Validation errors are 422s with one readable line.
"""

import asyncio
import contextlib
import errno
import html
import json
import logging
import math
import secrets
import socket
from pathlib import Path
from typing import Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from dann.serving.service import Busy, GenerationService, NotReady, service_for
from dann.serving.status import about
from dann.serving.votes import Votes, game_file
from dann.settings import Settings
from dann.voice.request import GenerationRequest
from lstm.errors import DannError
from web.body_limit import BodyLimit
from web.connections import with_header_deadline
from web.front_door import FrontDoor
from web.game import COOKIE, Game
from web.lag import LoopLag
from web.rate_limit import RateLimits, client_key, networks

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


class CannotListen(DannError):
    """The host and port cannot be listened on: in use, not permitted, or not an address here."""


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str = Field(max_length=64)
    pick: Literal["a", "b"]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "temp" is an error, not silently ignored

    mode: Literal["post", "reply"] = "post"
    prompt: str = ""
    context: str | None = None  # the page's "reply to": the text the answer replies to
    temperature: float | None = Field(None, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False)
    n: int = Field(1, ge=1, strict=True)  # strict: true is not 1. The upper bound is a setting, checked in the handler
    seed: int | None = Field(None, ge=0, le=MAX_SEED, strict=True)


def create_app(settings: Settings, service: GenerationService | None = None) -> FastAPI:
    """The playground app. Pass `service` to share one that is already running (the bot's, say):
    its owner starts and stops it. Without one, the app makes its own and runs it in its lifespan."""
    owned = service is None
    if owned:
        service = service_for(settings)
    lag = LoopLag()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if owned:
            await service.start()  # loads and compiles the model on the service's loader thread
        if service.current is None:
            log.info("no model in %s yet: the page says 'still learning' until the trainer publishes one",
                     settings.checkpoint_dir)
        watching = asyncio.create_task(lag.run())
        try:
            yield
        finally:
            watching.cancel()
            if owned:
                await service.stop()

    # No /docs: Swagger UI loads its scripts from a CDN, and these servers have no internet.
    app = FastAPI(title="dann", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings, app.state.service = settings, service
    app.add_middleware(BodyLimit, limit=body_limit(settings), timeout_s=settings.web_body_timeout_s)
    app.add_middleware(FrontDoor, service=service)  # outermost: before the body is even read
    app.add_exception_handler(RequestValidationError, validation_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    limits = RateLimits(settings.web_rate_per_minute, settings.web_rate_global_per_minute)
    proxies = networks(settings.web_trusted_proxies)

    def client_of(request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_key(peer, request.headers.get("x-forwarded-for"), proxies)

    def plot() -> Path | None:
        """The loss curve of the served model's training run, if the trainer drew one."""
        report = (service.status() or {}).get("report")
        path = Path(settings.checkpoint_dir) / report / "loss.png" if report else None
        return path if path and path.is_file() else None
    page = render_page(settings)
    def rate_limited(request: Request) -> JSONResponse | None:
        """A 429 once this client, or everyone together, has had the minute's generations (pairs
        count too)."""
        wait = limits.take(client_of(request))
        if not wait:
            return None
        seconds = math.ceil(wait)
        return problem(429, f"too many requests: try again in {seconds} s", {"Retry-After": str(seconds)})

    votes = Votes(game_file(settings))
    game = Game(settings, service, votes) if settings.web_game else None

    def visitor_of(request: Request) -> str | None:
        cookie = request.cookies.get(COOKIE, "")
        return cookie if 16 <= len(cookie) <= 64 and cookie.replace("-", "").replace("_", "").isalnum() else None

    @app.post("/api/game/pair")
    async def game_pair(request: Request):
        if game is None:
            return problem(404, "the Real or dann? game is off here (DANN_WEB_GAME)")
        if refused := rate_limited(request):
            return refused
        visitor = visitor_of(request) or secrets.token_urlsafe(16)
        try:
            dealt = await unless_gone(request, game.deal(visitor, client_of(request)))
        except ClientGone:
            return problem(499, "the client left before its pair was ready")
        except NotReady:
            return problem(503, STILL_LEARNING, {"Retry-After": str(math.ceil(settings.reload_poll_s))})
        except Busy as error:
            return problem(503, str(error), {"Retry-After": str(math.ceil(error.retry_after))})
        except DannError as error:  # no export, an export that does not read, nothing it may show
            return problem(503, f"the game cannot start: {error}")
        response = JSONResponse(dealt)
        response.set_cookie(COOKIE, visitor, max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    @app.post("/api/game/vote")
    async def game_vote(body: VoteRequest, request: Request):
        if game is None:
            return problem(404, "the Real or dann? game is off here (DANN_WEB_GAME)")
        visitor = visitor_of(request)
        if visitor is None:
            return problem(404, "no such pair for this visitor: ask for a new one")
        status_code, answer = game.vote(visitor, body.pair, body.pick)
        return answer if status_code == 200 else problem(status_code, answer)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                                           "X-Content-Type-Options": "nosniff"})

    @app.post("/api/generate")
    async def generate(body: GenerateRequest, request: Request):
        if body.n > settings.web_max_candidates:
            return problem(422, f"n must be a whole number from 1 to {settings.web_max_candidates}, got {body.n}")
        for field, text in (("prompt", body.prompt), ("context", body.context or "")):
            if len(text) > settings.max_prompt_chars:
                return problem(422, f"the {field} is {len(text)} characters long; the most is "
                                    f"{settings.max_prompt_chars}")
        if refused := rate_limited(request):
            return refused
        temperature = settings.temperature if body.temperature is None else body.temperature
        context = " ".join((body.context or "").split()) or None  # as a Discord message is: one line
        asked = GenerationRequest(body.mode, body.prompt, context=context, temperature=temperature, n=body.n,
                                  seed=body.seed)
        try:
            result = await unless_gone(request, service.generate(asked, client=client_of(request)))
        except ClientGone:
            return problem(499, "the client left before its answer was ready")  # nobody reads it
        except NotReady:
            return problem(503, STILL_LEARNING, {"Retry-After": str(math.ceil(settings.reload_poll_s))})
        except Busy as error:
            return problem(503, str(error), {"Retry-After": str(math.ceil(error.retry_after))})
        except DannError as error:  # expected: the request cannot be served as asked
            return problem(422, str(error))
        except Exception:
            log.exception("generating %d %s(s) failed", body.n, body.mode)
            return problem(500, "generation failed; the server's log says why")
        return {"texts": result.texts, "model_version": result.model_version, "ms": result.ms}

    @app.get("/api/status")
    async def status():
        model = service.status()
        return {
            "ready": model is not None,
            "model": model,
            "about": about(model, voice=settings.voice_name, owner=web_owner(settings)),
            "plot": plot() is not None,
            "game": {"enabled": game is not None, "tally": votes.of(model["version"]) if model else None},
            "limits": {
                "temperature": {"min": MIN_TEMPERATURE, "max": MAX_TEMPERATURE, "default": settings.temperature},
                "max_candidates": settings.web_max_candidates,
                "max_prompt_chars": settings.max_prompt_chars,
                "per_minute": settings.web_rate_per_minute,
            },
        }

    @app.get("/api/plot.png")
    async def plot_png():
        path = plot()
        if path is None:
            return problem(404, "no training plot yet: the trainer draws one when it publishes a model")
        # A new model brings a new plot: the browser must ask again, not reuse its copy.
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz():
        model = service.status()
        return {"ok": True, "ready": model is not None, "model_version": model and model["version"],
                "queue": service.load(), "loop_lag": lag.as_dict()}

    return app


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


def web_owner(settings: Settings) -> str | None:
    """How the page names who runs dann: Discord ids mean nothing on a web page."""
    return settings.owner_name or ("its owner on Discord" if settings.owner_ids else None)


def render_page(settings: Settings) -> str:
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

FIELDS = "mode, prompt, context, temperature, n and seed"
VOTE_FIELDS = "pair and pick"
ALLOWED = {
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
    vote = request.url.path == "/api/game/vote"
    lines = [describe(e, settings, VOTE_FIELDS if vote else FIELDS) for e in error.errors()]
    return problem(422, "; ".join(dict.fromkeys(lines)))  # each problem once, in order


def describe(error: dict, settings: Settings, fields: str = FIELDS) -> str:
    where = [str(part) for part in error.get("loc", ()) if part != "body"]
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error")
        return "the request body is not valid JSON" + (f" ({reason})" if reason else "")
    if not where and isinstance(error.get("input"), bytes):  # FastAPI parses JSON only when told it is JSON
        return "send the body as JSON, with the header Content-Type: application/json"
    if not where or error["type"] == "model_attributes_type":
        example = ('{"pair": "…", "pick": "a"}' if fields == VOTE_FIELDS
                   else '{"mode": "post", "prompt": "", "temperature": 0.4, "n": 1}')
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


# --- the request size cap --------------------------------------------------------------------------

def body_limit(settings: Settings) -> int:
    """Bytes a request body may have: the longest prompt and context at 4 UTF-8 bytes a character,
    plus room for the other fields. About 5 KB with the default 500-character limit."""
    return 1024 + 8 * settings.max_prompt_chars


# --- serving -----------------------------------------------------------------------------------

def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: any free one), or CannotListen saying why not."""
    if not 0 <= port <= 65535:  # getaddrinfo would quietly wrap 70000 round to 4464
        raise CannotListen(f"cannot listen on {host}:{port}: a port is a number from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        hint = "; is another `dann web` running? Choose another --port" if error.errno == errno.EADDRINUSE else ""
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    return sock


def run_web(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the playground until Ctrl-C (or SIGTERM) stops it. Blocking; raises CannotListen."""
    host = host or settings.web_host
    port = settings.web_port if port is None else port
    # Bound before the model loads, so a port in use fails at once, not after a compile.
    sock = listen(host, port)
    port = sock.getsockname()[1]
    log.info("the playground will be at http://%s:%d/ once the model has loaded from %s",
             f"[{host}]" if ":" in host else host, port, settings.checkpoint_dir)
    try:
        config = uvicorn.Config(
            create_app(settings), host=host, port=port, log_level="info",
            # The client address is ours to work out (rate_limit.py, DANN_WEB_TRUSTED_PROXIES):
            # uvicorn's own proxy handling trusts 127.0.0.1, which would let anyone on this host,
            # or behind a proxy on it, rotate X-Forwarded-For past the limits.
            proxy_headers=False, forwarded_allow_ips="",
            http=with_header_deadline(settings.web_header_timeout_s),
            limit_concurrency=settings.web_max_connections, timeout_keep_alive=5)
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has shut down cleanly and re-raised the Ctrl-C; stopping a server is no error
    finally:
        sock.close()
