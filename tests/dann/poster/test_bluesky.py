"""The poster on Bluesky, against a fake of its XRPC endpoints on 127.0.0.1."""

import logging

import pytest

from dann.poster.bluesky import BlueskyDestination
from dann.poster.poster import Poster, PosterStopped
from dann.poster.record import PosterRecord
from dann.state import store_beside
from tests.dann.poster.conftest import START, at, poster_settings
from tests.dann.poster.fake_bluesky import FakeBluesky

HOUR = 3600.0
CREATE = "/xrpc/com.atproto.repo.createRecord"
LOGIN = "/xrpc/com.atproto.server.createSession"


@pytest.fixture
def bluesky(fake_server):
    fake = FakeBluesky(fake_server)
    yield fake
    assert fake.invalid == []  # every answer of the fake fitted the SDK's models


def bluesky_poster(directory, server, service, fake_time, *, live=True, said=None, **overrides):
    settings = poster_settings(directory, bluesky_handle="dann.test", bluesky_app_password="app-pass",
                               bluesky_url=server.url, **overrides)
    return Poster(settings, [BlueskyDestination(settings)], service, live=live, clock=fake_time, sleep=fake_time.sleep,
                  say=(said if said is not None else []).append)


def replies(bluesky) -> list[dict]:
    return [record for record in bluesky.posted() if "reply" in record]


async def test_check_refuses_an_account_without_the_bot_label_and_accepts_one_with_it(
        tmp_path, fake_server, fake_time, service, bluesky):
    bluesky.bots.clear()
    with pytest.raises(PosterStopped) as stopped:
        await bluesky_poster(tmp_path, fake_server, service, fake_time).start()
    message = str(stopped.value)
    assert "\n" not in message and "not labelled as a bot" in message and '"bot"' in message
    assert fake_server.of("POST", CREATE) == []

    # A "bot" label some labeler put on the account is not the account's own word: still refused.
    bluesky.bots.add(bluesky.did)
    bluesky.labeler = "did:plc:labeler"
    with pytest.raises(PosterStopped):
        await bluesky_poster(tmp_path, fake_server, service, fake_time).start()

    bluesky.labeler = None
    await bluesky_poster(tmp_path, fake_server, service, fake_time).start()


async def test_a_scheduled_run_posts_once_per_slot_labelled_as_a_bots(
        tmp_path, fake_server, fake_time, service, bluesky):
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time, max_chars=400)
    await poster.start()
    await at(poster, fake_time, 1, 5.9)
    assert bluesky.posted() == []  # the first post is one interval after the first start
    await at(poster, fake_time, 6, 6.5, 11.9)
    assert len(bluesky.posted()) == 1
    await at(poster, fake_time, 12.1, 12.2, 17.9, 18)
    posted = bluesky.posted()
    assert len(posted) == 3 == len(fake_server.of("POST", CREATE))  # slots 1, 2 and 3, one each
    for record in posted:
        assert record["$type"] == "app.bsky.feed.post" and 0 < len(record["text"]) <= 300
        assert record["labels"]["$type"] == "com.atproto.label.defs#selfLabels"
        assert {"val": "bot"}.items() <= record["labels"]["values"][0].items()
    assert fake_server.of("POST", CREATE)[0].json["repo"] == bluesky.did


@pytest.mark.slow
async def test_mentions_are_answered_once_even_after_a_restart_and_the_cap_holds(
        tmp_path, fake_server, fake_time, service, bluesky, asked):
    root = bluesky.post("sam.test", "what a day")
    first = bluesky.mention("sam.test", "@dann.test and you?", parent=root)
    bluesky.mention("beep.test", "@dann.test BEEP", bot=True)
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time, max_thread_depth=2)
    await poster.start()
    await at(poster, fake_time, 0.1, 0.2)
    answered = replies(bluesky)
    assert len(answered) == 1  # sam's, not the bot's
    assert answered[0]["reply"]["parent"]["uri"] == first and answered[0]["reply"]["root"]["uri"] == root
    assert answered[0]["reply"]["parent"]["cid"] == bluesky.posts[first]["cid"]
    assert {"val": "bot"}.items() <= answered[0]["labels"]["values"][0].items()
    assert asked[-1].mode == "reply" and asked[-1].context == ("what a day", "and you?")

    # sam answers dann: primed with the whole thread, dann's words among it.
    dann_first = next(uri for uri, p in bluesky.posts.items() if p["created"])
    second = bluesky.mention("sam.test", "@dann.test really?", parent=dann_first)
    await at(poster, fake_time, 0.3)
    assert len(replies(bluesky)) == 2
    assert asked[-1].context == ("what a day", "and you?", bluesky.posts[dann_first]["record"]["text"], "really?")
    dann_second = [uri for uri, p in bluesky.posts.items() if p["created"]][-1]
    assert bluesky.posts[dann_second]["record"]["reply"]["parent"]["uri"] == second

    # The thread now holds 2 of dann's posts, DANN_MAX_THREAD_DEPTH: no third.
    bluesky.mention("sam.test", "@dann.test one more", parent=dann_second)
    await at(poster, fake_time, 0.4, 0.5)
    assert len(replies(bluesky)) == 2

    restarted = bluesky_poster(tmp_path, fake_server, service, fake_time, max_thread_depth=2)
    await restarted.start()
    await at(restarted, fake_time, 0.6)
    assert len(replies(bluesky)) == 2


async def test_only_a_thread_below_the_cap_is_answered(tmp_path, fake_server, fake_time, service, bluesky):
    uri = bluesky.post("sam.test", "hello")
    for author in ["dann.test", "sam.test", "dann.test"]:
        uri = bluesky.post(author, f"{author} says hi", parent=uri)
    capped = bluesky.mention("sam.test", "@dann.test hm", parent=uri)  # 2 of dann's posts above it
    below = bluesky.mention("kim.test", "@dann.test hm", parent=bluesky.post(
        "dann.test", "dann says hi", parent=bluesky.post("kim.test", "a new one")))  # 1 above it
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time, max_thread_depth=2)
    await poster.start()
    await at(poster, fake_time, 0.1, 0.2)
    assert [r["reply"]["parent"]["uri"] for r in replies(bluesky)] == [below]
    assert poster.record.answered("bluesky", capped)  # passed over for good


async def test_a_429_waits_for_the_reset_then_posts_once(tmp_path, fake_server, fake_time, service, bluesky):
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    reset = START + 6 * HOUR + 120
    fake_server.script("POST", CREATE, (429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                        {"ratelimit-reset": str(int(reset)), "ratelimit-remaining": "0"}))
    await at(poster, fake_time, 6)
    assert fake_time.slept == [120.0]
    assert len(fake_server.of("POST", CREATE)) == 2 and len(bluesky.posted()) == 1
    await at(poster, fake_time, 6.1)
    assert len(bluesky.posted()) == 1


async def test_a_refused_login_stops_the_poster_with_one_line(tmp_path, fake_server, fake_time, service, bluesky):
    bluesky.password = "another"
    with pytest.raises(PosterStopped) as stopped:
        await bluesky_poster(tmp_path, fake_server, service, fake_time).start()
    message = str(stopped.value)
    assert "\n" not in message and "DANN_BLUESKY_HANDLE" in message and "DANN_BLUESKY_APP_PASSWORD" in message
    assert "app-pass" not in message
    assert [r.path for r in fake_server.requests] == [LOGIN]

    bluesky.password = "app-pass"  # a login the server cannot read is refused the same way
    fake_server.script("POST", LOGIN, (400, {"error": "InvalidRequest", "message": "Input/identifier must be a string"}))
    with pytest.raises(PosterStopped, match="DANN_BLUESKY_APP_PASSWORD"):
        await bluesky_poster(tmp_path, fake_server, service, fake_time).start()


async def test_a_dry_run_sends_no_post_request(tmp_path, fake_server, fake_time, service, bluesky):
    bluesky.mention("sam.test", "@dann.test hi")
    said = []
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time, live=False, said=said)
    await poster.start()
    await at(poster, fake_time, 1, 6, 6.5)
    assert fake_server.of("POST") == []  # not even the login
    assert len([line for line in said if line.startswith("[dry run] bluesky would post: ")]) == 1  # slot 1's
    assert PosterRecord(store_beside(tmp_path)).data == {}  # a dry run keeps its record in memory


async def test_the_poster_survives_the_server_disappearing(
        tmp_path, fake_server, fake_time, service, bluesky, caplog):
    poster = bluesky_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    await at(poster, fake_time, 6)
    assert len(bluesky.posted()) == 1
    fake_server.stop()
    with caplog.at_level(logging.WARNING, logger="dann.poster"):
        await at(poster, fake_time, 12, 12 + 1 / 120, 12 + 1 / 60)  # a minute of ticks
    warnings = [r.getMessage() for r in caplog.records if r.name == "dann.poster" and r.levelno >= logging.WARNING]
    assert len(warnings) == 3 and all("cannot reach" in w for w in warnings)
    fake_server.start()
    await at(poster, fake_time, 12 + 2 / 60)
    assert len(bluesky.posted()) == 2
