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
import logging
import socket

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles

from dann.serving.service import Busy, GenerationService, NotReady, service_for
from dann.serving.votes import Votes, game_file
from dann.settings import WebSettings
from dann.state import open_store
from dann.state.pause import Control
from lstm.errors import DannError
from web import routes
from web.body_limit import BodyLimit
from web.connections import with_header_deadline
from web.front_door import FrontDoor
from web.game import Game
from web.http import STATIC, ClientGone, Refused, SecurityHeaders, expected_failure, render_page, validation_error
from web.lag import LoopLag
from web.rate_limit import RateLimits, networks

log = logging.getLogger("dann.web")

class CannotListen(DannError):
    """The host and port cannot be listened on: in use, not permitted, or not an address here."""


def create_app(settings: WebSettings, service: GenerationService | None = None) -> FastAPI:
    """The playground app. Pass `service` to share one that is already running (the bot's, say):
    its owner starts and stops it. Without one, the app makes its own and runs it in its lifespan.
    The routes are web/routes.py's routers; what they share lives in `app.state`."""
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
    votes = Votes(open_store(settings), game_file(settings))
    app.state.settings, app.state.service, app.state.lag, app.state.votes = settings, service, lag, votes
    app.state.pause = Control(votes.store)  # the owner's pause, set from Discord: it holds here too
    app.state.limits = RateLimits(settings.web_rate_per_minute, settings.web_rate_global_per_minute,
                                  settings.rate_limit_storage)
    app.state.proxies = networks(settings.web_trusted_proxies)
    app.state.game = Game(settings, service, votes) if settings.web_game else None
    app.state.page = render_page(settings)
    app.add_middleware(BodyLimit, limit=body_limit(settings), timeout_s=settings.web_body_timeout_s)
    app.add_middleware(FrontDoor, service=service)  # before the body is even read
    app.add_middleware(SecurityHeaders)  # outermost: every response carries them, refusals too
    app.add_exception_handler(RequestValidationError, validation_error)
    for expected in (Refused, ClientGone, NotReady, Busy, DannError):
        app.add_exception_handler(expected, expected_failure)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (routes.pages, routes.api, routes.game):
        app.include_router(router)
    return app


# --- the request size cap --------------------------------------------------------------------------

def body_limit(settings: WebSettings) -> int:
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


def run_web(settings: WebSettings, host: str | None = None, port: int | None = None) -> None:
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
