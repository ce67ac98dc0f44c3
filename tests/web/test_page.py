"""The page in a real browser: Debian's chromium, headless, driven by playwright, against a real
uvicorn server on a free port serving the tiny trained model."""

import contextlib
import re
import shutil
import threading
import time

import pytest
import uvicorn

from dann.settings import Settings
from web.app import create_app, listen

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); the browser tests need it")]
XSS = "<img src=x onerror=alert(1)>"
VOICE_XSS = "<script>alert(2)</script>"


@contextlib.contextmanager
def server(checkpoint_dir, **overrides):
    """The app on uvicorn in a background thread, on a free 127.0.0.1 port. Yields its URL."""
    settings = Settings(**{"checkpoint_dir": checkpoint_dir, "temperature": 0.4, "max_chars": 60,
                           "max_prompt_chars": 500, "web_max_candidates": 8, "web_rate_per_minute": 1000,
                           "voice_name": f"Sam {VOICE_XSS}", "owner_name": "Sam themself", **overrides})
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(settings)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvicorn_server.started:  # the model loads and compiles during startup
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within a minute"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def url(trained_dir):
    with server(trained_dir) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)  # a first request may wait for a compile on a busy 2-core machine
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def test_set_the_temperature_click_generate_and_read_the_text(page, url):
    from playwright.sync_api import expect

    page.goto(url)
    expect(page).to_have_title("dann")
    expect(page.locator("#model-version")).to_have_text(re.compile(r"^\d+$"))  # the panel shows the served model
    expect(page.locator("#model-loss")).to_contain_text("nats")
    page.locator("#temperature").fill("0.7")
    expect(page.locator("#temperature-value")).to_have_text("0.70")
    page.locator("#prompt").fill("good")
    with page.expect_request("**/api/generate") as sent:
        page.locator("#generate").click()
    assert sent.value.post_data_json["temperature"] == 0.7
    candidates = page.locator("#output > li")
    # The page asks for 3 by default: 3 x 8 best-of-n candidates, a batch shape the service compiles
    # on this first request (it warms up only one request's 8 at load), which takes seconds on a busy CPU.
    expect(candidates).to_have_count(3, timeout=60_000)
    for i in range(3):
        expect(candidates.nth(i)).to_have_text(re.compile(r"^good"))
    expect(page.locator("#message")).to_contain_text("model version")
    # The status panel refreshes after a generation and counts what best-of-n saw: 3 texts x 8.
    expect(page.locator("#model-filter")).to_contain_text("Of 24 candidates so far, 0 copied")
    expect(page.locator("#model-loss")).to_contain_text("n-gram model scores")
    # "why?" under a text: how new it is, from the posts the served version published.
    why = candidates.nth(0).locator("button.why")
    with page.expect_response("**/api/why") as answered:
        why.click()
    assert answered.value.ok and answered.value.request.post_data_json == {"text": candidates.nth(0).locator(".text").text_content()}
    expect(candidates.nth(0).locator(".why-answer")).to_contain_text("the longest run of words it shares with any one post")
    expect(why).to_have_attribute("aria-expanded", "true")
    why.click()
    expect(candidates.nth(0).locator(".why-answer")).to_be_hidden()


def test_the_page_says_it_is_a_bot_whose_voice_and_from_when(page, url):
    from playwright.sync_api import expect

    page.goto(url)
    about = page.locator("#about")
    expect(about).to_contain_text(f"dann is a bot that imitates Sam {VOICE_XSS}'s posts")  # text, not markup
    expect(about).to_contain_text(re.compile(r"\(version \d+\) was trained on \d+ \w+ 20\d\d"))
    expect(about).to_contain_text("It is run by Sam themself")
    assert page.locator("#about script").count() == 0 and page.dialogs == []


def test_markup_in_a_prompt_is_shown_as_text_and_never_runs(page, url):
    from playwright.sync_api import expect

    page.goto(url)
    page.locator("#prompt").fill(XSS)
    page.locator("#n").fill("1")
    page.locator("#generate").click()
    candidate = page.locator("#output li")
    expect(candidate).to_have_count(1)
    expect(candidate).to_contain_text(XSS)
    expect(page.get_by_text(XSS)).to_be_visible()
    assert page.locator("#output img").count() == 0
    assert page.evaluate("document.querySelectorAll('img:not(#plot)').length") == 0
    page.wait_for_timeout(300)  # time for an injected image's onerror to have fired
    assert page.dialogs == []


def test_the_page_works_from_the_keyboard_alone(page, url):
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#model-version")).to_have_text(re.compile(r"^\d+$"))

    def focused():
        return page.evaluate("document.activeElement.id")

    page.keyboard.press("Tab")
    assert focused() == "context"
    page.keyboard.press("Tab")
    assert focused() == "prompt"
    page.keyboard.type("good")
    page.keyboard.press("Tab")
    assert focused() == "mode"
    page.keyboard.press("Tab")
    assert focused() == "n"
    page.keyboard.press("Tab")
    assert focused() == "temperature"
    page.keyboard.press("ArrowRight")
    expect(page.locator("#temperature-value")).to_have_text("0.41")
    page.keyboard.press("Tab")
    assert focused() == "generate"
    page.keyboard.press("Enter")
    # The first 3-text request may compile its batch shape: seconds on a busy 2-core machine.
    expect(page.locator("#output li")).to_have_count(3, timeout=60_000)
    assert focused() == "generate"  # still there for the next try


CALLS = {"knock knock": "who is there", "ping": "pong", "good night": "sleep well", "how are you": "fine thanks"}


@pytest.fixture(scope="module")
def call_and_response_dir(tmp_path_factory):
    """A model trained on call-and-response pairs: each call a post, its response the reply after it."""
    import random

    from tests.conftest import TINY_MODEL, fit, tiny_config
    from trainer.corpus import Corpus, Record

    order = random.Random(0)
    pairs = [pair for pair in CALLS.items() for _ in range(60)]
    order.shuffle(pairs)  # so that only the call, not the place in the stream, tells which response comes
    records = [record for call, response in pairs for record in (Record("post", call), Record("reply", response))]
    directory = tmp_path_factory.mktemp("calls")
    fit(Corpus("test", records), TINY_MODEL, tiny_config(max_steps=400, eval_every=400), directory)
    return directory


def test_the_reply_field_primes_the_answer_with_the_call(browser, call_and_response_dir):
    from playwright.sync_api import expect

    with server(call_and_response_dir, temperature=0.2) as address:
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(address)
        for call, response in CALLS.items():
            page.locator("#context").fill(call)
            expect(page.locator("#mode")).to_have_value("reply")  # something to reply to makes it a reply
            with page.expect_request("**/api/generate") as sent:
                page.locator("#generate").click()
            assert sent.value.post_data_json["context"] == call
            candidates = page.locator("#output > li .text")  # each text, without its "why?"
            expect(candidates).to_have_count(3, timeout=60_000)  # the first compiles a batch shape
            expect(candidates.first).to_have_text(response)
            assert candidates.all_text_contents() == [response] * 3
        page.close()


def test_the_page_fits_a_phone(browser, url):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(url)
        page.locator("#prompt").fill("good" + "o" * 150)  # one long unbroken word
        page.locator("#n").fill("1")
        page.locator("#generate").click()
        # A 154-character prompt is a prompt width the service has not compiled yet: allow for that.
        expect(page.locator("#output li")).to_have_count(1, timeout=60_000)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate("parseFloat(getComputedStyle(document.getElementById('prompt')).fontSize)") >= 16
    finally:
        context.close()


def test_before_any_model_the_page_says_so(browser, tmp_path):
    from playwright.sync_api import expect

    with server(tmp_path) as address:
        page = browser.new_page()
        try:
            page.goto(address)
            expect(page.locator("#model-version")).to_contain_text("still learning")
            expect(page.locator("#plot-note")).to_contain_text("No training plot yet")
            page.locator("#generate").click()
            expect(page.locator("#message")).to_contain_text("still learning")
            expect(page.locator("#output li")).to_have_count(0)
        finally:
            page.close()


# --- Real or dann? -------------------------------------------------------------------------------

@pytest.fixture
def game_url(game_dir):
    with server(game_dir, web_game=True) as address:  # no export: the version's own posts
        yield address


def test_real_or_dann_counts_one_vote_per_pair_and_shows_only_validation_posts(
        page, game_url, game_export, game_dir, capsys):
    from playwright.sync_api import expect

    from tests.helpers import run_main

    game = page.locator("#game")
    with page.expect_response("**/api/game/pair") as dealt:
        page.goto(game_url)
    expect(game).to_be_visible()
    cards = {side: page.locator(f"#game-{side}") for side in "ab"}
    tally = page.locator("#game-tally")
    expect(tally).to_have_text("No votes on this model yet.")
    for round, expected in enumerate(["fooled 0 of 1 votes", "fooled 1 of 2 votes", "fooled 1 of 3 votes"]):
        pair = dealt.value.json()
        expect(cards["a"]).to_be_enabled()
        texts = {side: cards[side].text_content() for side in "ab"}
        assert texts == {"a": pair["a"], "b": pair["b"]}
        real = [side for side, text in texts.items() if text in game_export.shown]
        assert len(real) == 1 and not set(texts.values()) & game_export.hidden, texts
        pick = real[0] if round != 1 else ("b" if real[0] == "a" else "a")  # the second time, be fooled
        with page.expect_response("**/api/game/vote"):
            cards[pick].click()
        expect(page.locator("#game-message")).to_have_text(
            "Fooled: that one was dann's. The real post is outlined." if round == 1 else "Right: that one is real.")
        expect(cards[real[0]]).to_have_attribute("data-verdict", "real")
        expect(tally).to_contain_text(expected)
        cards["a"].click(force=True)  # a second click on a voted pair is not a second vote
        # The same visitor sending the vote again by hand is refused too.
        again = page.request.post(game_url + "api/game/vote", data={"pair": pair["pair"], "pick": pick})
        assert again.status == 409
        with page.expect_response("**/api/game/pair") as dealt:
            page.locator("#game-next").click()
    expect(tally).to_contain_text("fooled 1 of 3 votes: 33% (95% interval 6% to 79%")
    # Another visitor (a new browser context: no cookie) cannot vote on this visitor's pair.
    other = page.context.browser.new_context()
    stranger = other.request.post(game_url + "api/game/vote", data={"pair": dealt.value.json()["pair"], "pick": "a"})
    assert stranger.status == 404
    other.close()
    code, out, _ = run_main(capsys, "status", "--checkpoint-dir", str(game_dir))
    assert code == 0 and "Real or dann?: it fooled 1 of 3 votes on this version (33%, 95% interval 6% to 79%" in out
