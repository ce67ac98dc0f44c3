"""The poster on Mastodon, against a fake Mastodon on 127.0.0.1."""

import datetime
import logging
import time

import pytest

from dann.poster.mastodon import MastodonDestination, plain, without_handles
from dann.poster.poster import Poster, PosterStopped
from tests.dann.poster.conftest import at, poster_settings
from tests.dann.poster.fake_mastodon import FakeMastodon

HOUR = 3600.0


def mastodon_poster(directory, server, service, fake_time, *, live=True, said=None, **overrides):
    settings = poster_settings(directory, mastodon_url=server.url, mastodon_token="t0ken", **overrides)
    return Poster(settings, [MastodonDestination(settings)], service, live=live, clock=fake_time,
                  sleep=fake_time.sleep, say=(said if said is not None else []).append)


def texts_of(context) -> tuple:
    return context if isinstance(context, tuple) else (context,)


def replies(mastodon) -> list[dict]:
    return [p for p in mastodon.posts if "in_reply_to_id" in p]


async def test_a_scheduled_run_posts_once_per_slot_unlisted_within_500(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server)
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, max_chars=1000)
    await poster.start()
    await at(poster, fake_time, 1, 5.9)
    assert mastodon.posts == []  # the first post is one interval after the first start
    await at(poster, fake_time, 6, 6.5, 11.9, 12.1, 12.2)
    assert len(fake_server.of("POST", "/api/v1/statuses")) == 2  # one in slot 1, one in slot 2
    assert all(0 < len(p["status"]) <= 500 and p["visibility"] == "unlisted" for p in mastodon.posts)
    assert "in_reply_to_id" not in mastodon.posts[0]
    assert fake_server.of("GET", "/api/v1/accounts/verify_credentials")[0].headers["authorization"] == "Bearer t0ken"


async def test_posts_take_the_configured_visibility(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server)
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, mastodon_visibility="private")
    await poster.start()
    await at(poster, fake_time, 6)
    assert [p["visibility"] for p in mastodon.posts] == ["private"]


async def test_a_live_run_marks_the_account_as_a_bot(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server, bot=False)
    await mastodon_poster(tmp_path, fake_server, service, fake_time).start()
    [patch] = fake_server.of("PATCH", "/api/v1/accounts/update_credentials")
    assert patch.form["bot"] == "1" and mastodon.me["bot"] is True


async def test_an_account_already_a_bot_is_left_alone(tmp_path, fake_server, fake_time, service):
    FakeMastodon(fake_server, bot=True)
    await mastodon_poster(tmp_path, fake_server, service, fake_time).start()
    assert fake_server.of("PATCH") == []


async def test_the_poster_stops_when_it_may_not_set_the_bot_flag(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server, bot=False, may_set_bot=False)
    with pytest.raises(PosterStopped) as stopped:
        await mastodon_poster(tmp_path, fake_server, service, fake_time).start()
    message = str(stopped.value)
    assert message.startswith("mastodon: ") and "This is an automated account" in message and "\n" not in message
    assert mastodon.posts == []


@pytest.mark.slow
async def test_mentions_are_answered_once_even_after_a_restart(tmp_path, fake_server, fake_time, service,
                                                              asked):
    mastodon = FakeMastodon(fake_server)
    first = mastodon.mention("alice", "good morning")
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    await at(poster, fake_time, 0.1, 0.2)
    [reply] = replies(mastodon)
    assert reply["in_reply_to_id"] == first and reply["status"].startswith("@alice ")
    assert asked[-1].mode == "reply" and texts_of(asked[-1].context) == ("good morning",)

    later = mastodon.mention("bob", "and you?")
    await at(poster, fake_time, 0.3, 0.4)
    assert [r["in_reply_to_id"] for r in replies(mastodon)] == [first, later]

    restarted = mastodon_poster(tmp_path, fake_server, service, fake_time)
    await restarted.start()
    await at(restarted, fake_time, 0.5, 0.6)
    assert len(replies(mastodon)) == 2


async def test_a_reply_is_primed_with_its_thread_and_no_more_public_than_the_mention(
        tmp_path, fake_server, fake_time, service, asked):
    mastodon = FakeMastodon(fake_server)
    root = mastodon.status("carol", "too far up")
    above = mastodon.status("carol", "fish & chips\nat noon", in_reply_to=root)
    nearer = mastodon.status("dann", "lol same", in_reply_to=above)
    mention = mastodon.mention("alice", "what do you say?", in_reply_to=nearer, visibility="private")
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, thread_messages=2)
    await poster.start()
    await at(poster, fake_time, 0.1)
    assert asked[-1].context == ("fish & chips at noon", "lol same", "what do you say?")  # the nearest two
    [reply] = replies(mastodon)
    assert reply["in_reply_to_id"] == mention and reply["visibility"] == "private"  # not unlisted

    # A public mention gets the configured visibility; one by a bot gets no answer at all.
    mastodon.mention("robot", "beep", bot=True)
    public = mastodon.mention("bob", "hi")
    await at(poster, fake_time, 0.2)
    assert [(r["in_reply_to_id"], r["visibility"]) for r in replies(mastodon)][1:] == [(public, "unlisted")]


async def test_the_thread_is_bounded_by_its_characters(tmp_path, fake_server, fake_time, service, asked):
    mastodon = FakeMastodon(fake_server)
    above = mastodon.status("carol", "a" * 30)
    nearer = mastodon.status("carol", "b" * 20, in_reply_to=above)
    mastodon.mention("alice", "hm", in_reply_to=nearer)
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, thread_chars=40)
    await poster.start()
    await at(poster, fake_time, 0.1)
    assert asked[-1].context == ("b" * 20, "hm")


async def test_the_depth_cap_holds(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server)
    root = mastodon.status("alice", "hello")
    chain = mastodon.status("dann", "hi", in_reply_to=root)
    chain = mastodon.status("alice", "how are you", in_reply_to=chain)
    below = mastodon.mention("alice", "still there?", in_reply_to=chain)  # one of dann's above: answered
    chain = mastodon.status("dann", "fine", in_reply_to=chain)
    chain = mastodon.status("alice", "great", in_reply_to=chain)
    mastodon.mention("alice", "and now?", in_reply_to=chain)  # two of dann's above: the cap
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, max_thread_depth=2)
    await poster.start()
    await at(poster, fake_time, 0.1, 0.2)
    assert [r["in_reply_to_id"] for r in replies(mastodon)] == [below]


@pytest.mark.parametrize("form", ["iso", "epoch"])
async def test_a_429_waits_for_the_reset_then_posts_once(tmp_path, fake_server, fake_time, service, form):
    mastodon = FakeMastodon(fake_server)
    # Mastodon.py drops a reset time that is past by its own clock: this test's clock is the real one.
    origin = fake_time.now = time.time()
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    reset = int(origin + 6 * HOUR) + 120
    header = (datetime.datetime.fromtimestamp(reset, datetime.UTC).isoformat() if form == "iso" else str(reset))
    fake_server.script("POST", "/api/v1/statuses", (429, {"error": "Too many requests"}, {"X-RateLimit-Reset": header}))
    await at(poster, fake_time, 6, origin=origin)
    assert len(fake_server.of("POST", "/api/v1/statuses")) == 2 and len(mastodon.posts) == 1
    [wait] = fake_time.slept
    assert 118 <= wait <= 122


async def test_a_wrong_token_stops_the_poster_with_one_line(tmp_path, fake_server, fake_time, service):
    FakeMastodon(fake_server)
    fake_server.script("GET", "/api/v1/accounts/verify_credentials",
                       (401, {"error": "The access token is invalid"}))
    with pytest.raises(PosterStopped) as stopped:
        await mastodon_poster(tmp_path, fake_server, service, fake_time).start()
    message = str(stopped.value)
    assert message.startswith("mastodon: ") and "DANN_MASTODON_TOKEN" in message and "\n" not in message
    assert "t0ken" not in message


async def test_a_dry_run_sends_nothing(tmp_path, fake_server, fake_time, service):
    mastodon = FakeMastodon(fake_server, bot=False)
    mastodon.mention("alice", "good morning")
    said = []
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time, live=False, said=said)
    await poster.start()
    await at(poster, fake_time, 6)
    assert [r.method for r in fake_server.requests if r.method != "GET"] == []
    assert mastodon.me["bot"] is False
    assert any(line.startswith("[dry run] mastodon would post: ") for line in said)
    assert any(line.startswith("[dry run] mastodon would answer alice") for line in said)


async def test_the_poster_survives_mastodon_going_away(tmp_path, fake_server, fake_time, service, caplog):
    mastodon = FakeMastodon(fake_server)
    poster = mastodon_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    fake_server.stop()
    with caplog.at_level(logging.WARNING, logger="dann.poster"):
        await at(poster, fake_time, 6, 6 + 0.5 / 60, 6 + 1 / 60)
    assert sum("mastodon: cannot reach Mastodon" in r.getMessage() for r in caplog.records) == 3
    assert mastodon.posts == []
    fake_server.start()
    await at(poster, fake_time, 6 + 2 / 60, 6 + 3 / 60)
    assert len(mastodon.posts) == 1


def test_statuses_are_read_as_plain_text():
    html = ('<p><span class="h-card"><a href="https://x.social/@dann" class="u-url mention">@<span>dann</span></a>'
            '</span> fish &amp; chips<br />at <a href="https://e.org/a/b"><span class="invisible">https://</span>'
            '<span class="ellipsis">e.org/a</span><span class="invisible">/b</span></a></p><p>&lt;3 @bob</p>')
    assert without_handles(plain(html)) == "fish & chips at https://e.org/a/b <3 @bob"
