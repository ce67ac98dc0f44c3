"""The page's routes, as FastAPI routers: the page itself, the generation API, and the "Real or
dann?" game. What they share (settings, service, rate limits, the game) is in `app.state`, set by
web/app.py's `create_app`; expected failures are raised and mapped to HTTP in one place there
(`expected_failure`)."""

import logging
import math
import secrets
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from dann.serving.service import Busy, NotReady
from dann.serving.status import about
from dann.state.pause import ControlError
from dann.voice.request import GenerationRequest
from lstm.errors import DannError
from web.game import COOKIE, signed, verified
from web.http import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    ClientGone,
    GenerateRequest,
    Refused,
    VoteRequest,
    WhyRequest,
    unless_gone,
    web_owner,
)
from web.rate_limit import RateLimitError, client_key, over_https

log = logging.getLogger("dann.web")

pages = APIRouter()
api = APIRouter(prefix="/api")
game = APIRouter(prefix="/api/game")


def client_of(request: Request) -> str:
    peer = request.client.host if request.client else None
    return client_key(peer, request.headers.get("x-forwarded-for"), request.app.state.proxies)


def take_rate(request: Request) -> None:
    """Refuses with 503 while an owner has paused dann everywhere (a pause that cannot be read
    counts as one), and with 429 once this client, or everyone together, has had the minute's
    generations (pairs count too)."""
    try:
        paused = request.app.state.pause.pause_of(None)
    except ControlError as error:
        log.error("%s; the page answers 503 until it is fixed", error)
        paused = {"until": None}
    if paused is not None:
        wait = 60 if paused["until"] is None else max(1, math.ceil(paused["until"] - time.time()))
        raise Refused(503, "dann is paused by its owner for now", {"Retry-After": str(min(wait, 3600))})
    try:
        wait = request.app.state.limits.take(client_of(request))
    except RateLimitError as error:
        log.error("%s; the page answers 503 until it can count again", error)
        raise Refused(503, "dann cannot count requests just now; try again in a minute", {"Retry-After": "60"}) from None
    if wait:
        seconds = math.ceil(wait)
        raise Refused(429, f"too many requests: try again in {seconds} s", {"Retry-After": str(seconds)})


def plot(request: Request) -> Path | None:
    """The loss curve of the served model's training run, if the trainer drew one."""
    state = request.app.state
    report = (state.service.status() or {}).get("report")
    path = Path(state.settings.checkpoint_dir) / report / "loss.png" if report else None
    return path if path and path.is_file() else None


@pages.get("/", response_class=HTMLResponse)
async def index(request: Request):
    return HTMLResponse(request.app.state.page)  # its security headers: web/http.py's SecurityHeaders


@pages.get("/healthz")
async def healthz(request: Request):
    state = request.app.state
    model = state.service.status()
    return {"ok": True, "ready": model is not None, "model_version": model and model["version"],
            "queue": state.service.load(), "loop_lag": state.lag.as_dict()}


@api.post("/generate")
async def generate(body: GenerateRequest, request: Request):
    settings, service = request.app.state.settings, request.app.state.service
    if body.n > settings.web_max_candidates:
        raise Refused(422, f"n must be a whole number from 1 to {settings.web_max_candidates}, got {body.n}")
    for field, text in (("prompt", body.prompt), ("context", body.context or "")):
        if len(text) > settings.max_prompt_chars:
            raise Refused(422, f"the {field} is {len(text)} characters long; the most is {settings.max_prompt_chars}")
    take_rate(request)
    temperature = settings.temperature if body.temperature is None else body.temperature
    context = " ".join((body.context or "").split()) or None  # as a Discord message is: one line
    asked = GenerationRequest(body.mode, body.prompt, context=context, temperature=temperature, n=body.n,
                              seed=body.seed)
    try:
        result = await unless_gone(request, service.generate(asked, client=client_of(request)))
    except (DannError, ClientGone):
        raise  # expected, and mapped in one place
    except Exception:
        log.exception("generating %d %s(s) failed", body.n, body.mode)
        raise Refused(500, "generation failed; the server's log says why") from None
    return {"texts": result.texts, "model_version": result.model_version, "ms": result.ms}


@api.post("/why")
async def why(body: WhyRequest, request: Request):
    """"Why did dann say that?": the real posts a text is closest to, and how new it is."""
    take_rate(request)
    explained = await request.app.state.service.why(body.text)
    return {**explained.as_dict(), "summary": explained.summary()}


@api.get("/status")
async def status(request: Request):
    state = request.app.state
    settings, model = state.settings, state.service.status()
    return {
        "ready": model is not None,
        "model": model,
        "about": about(model, voice=settings.voice_name, owner=web_owner(settings)),
        "plot": plot(request) is not None,
        "game": {"enabled": state.game is not None, "tally": state.votes.of(model["version"]) if model else None},
        "limits": {
            "temperature": {"min": MIN_TEMPERATURE, "max": MAX_TEMPERATURE, "default": settings.temperature},
            "max_candidates": settings.web_max_candidates,
            "max_prompt_chars": settings.max_prompt_chars,
            "per_minute": settings.web_rate_per_minute,
        },
    }


@api.get("/plot.png")
async def plot_png(request: Request):
    path = plot(request)
    if path is None:
        raise Refused(404, "no training plot yet: the trainer draws one when it publishes a model")
    # A new model brings a new plot: the browser must ask again, not reuse its copy.
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})


def the_game(request: Request):
    if request.app.state.game is None:
        raise Refused(404, "the Real or dann? game is off here (DANN_WEB_GAME)")
    return request.app.state.game


def visitor_of(request: Request) -> str | None:
    """The visitor id of the request's cookie, if this server signed it."""
    return verified(the_game(request).key, request.cookies.get(COOKIE, ""))


@game.post("/pair")
async def game_pair(request: Request):
    dealer = the_game(request)
    take_rate(request)
    visitor = visitor_of(request) or secrets.token_urlsafe(16)
    try:
        dealt = await unless_gone(request, dealer.deal(visitor, client_of(request)))
    except (NotReady, Busy):
        raise  # as for any request
    except DannError as error:  # a version without the posts it may show, or none left to show
        raise Refused(503, f"the game cannot start: {error}") from None
    response = JSONResponse(dealt)
    secure = over_https(request.url.scheme, request.client.host if request.client else None,
                        request.headers.get("x-forwarded-proto"), request.app.state.proxies)
    response.set_cookie(COOKIE, signed(dealer.key, visitor), max_age=365 * 86400, httponly=True, samesite="strict",
                        secure=secure)
    return response


@game.post("/vote")
async def game_vote(body: VoteRequest, request: Request):
    dealer = the_game(request)
    visitor = visitor_of(request)
    if visitor is None:
        raise Refused(404, "no such pair for this visitor: ask for a new one")
    status_code, answer = dealer.vote(visitor, body.pair, body.pick, client_of(request))
    if status_code != 200:
        raise Refused(status_code, answer)
    return answer
