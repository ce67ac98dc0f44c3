"""The poster on X, against a fake of X's API v2 on 127.0.0.1."""

import asyncio
import logging
import time

import pytest

from dann.poster.poster import Poster, PosterStopped
from dann.poster.x import XDestination, fit
from tests.dann.poster.conftest import START, at, poster_settings
from tests.dann.poster.fake_x import DANN_ID, FakeX

HOUR = 3600.0
KEYS = {"x_api_key": "k", "x_api_secret": "ks", "x_access_token": "t", "x_access_secret": "ts"}


def x_poster(directory, server, service, fake_time, *, live=True, said=None, **overrides):
    settings = poster_settings(directory, x_api_url=server.url, **KEYS, **overrides)
    return Poster(settings, [XDestination(settings)], service, live=live, clock=fake_time, sleep=fake_time.sleep,
                  say=(said if said is not None else []).append)


async def test_a_scheduled_run_posts_once_per_slot_within_280(tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time, max_chars=400)
    await poster.start()
    await at(poster, fake_time, 1, 5.9)
    assert x.posted() == []  # the first post is one interval after the first start
    await at(poster, fake_time, 6, 6.5, 11.9, 12.1, 12.2)
    posted = x.posted()
    assert len(posted) == 2  # one in slot 1, one in slot 2
    assert all(0 < len(p["text"]) <= 280 and set(p) == {"text"} for p in posted)
    assert fake_server.of("POST", "/2/tweets")[0].headers["authorization"].startswith("OAuth ")  # user keys


def test_the_text_fits_xs_weighted_count():
    assert fit("a" * 300) == "a" * 280
    assert fit("字" * 200) == "字" * 140  # CJK counts 2
    assert fit("é" * 280) == "é" * 280


@pytest.mark.slow
async def test_mentions_are_answered_once_even_after_a_restart_and_the_cap_holds(
        tmp_path, fake_server, fake_time, service, asked):
    x = FakeX(fake_server)
    first = x.add("@dann_ebooks good morning", "7", username="sam")
    poster = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True, max_thread_depth=2)
    await poster.start()
    await at(poster, fake_time, 0.1, 0.2)
    replies = [p for p in x.posted() if "reply" in p]
    assert len(replies) == 1 and replies[0]["reply"]["in_reply_to_tweet_id"] == first
    assert asked[-1].mode == "reply" and asked[-1].context == "good morning"

    # A reply in the thread: primed with it. The thread then holds dann's second tweet: the cap.
    dann_first = next(i for i, t in x.tweets.items() if t["author_id"] == DANN_ID)
    second = x.add("@dann_ebooks and you?", "7", in_reply_to=dann_first)
    await at(poster, fake_time, 0.3)
    assert asked[-1].context == ("good morning", x.tweets[dann_first]["text"], "and you?")
    dann_second = max(i for i, t in x.tweets.items() if t["author_id"] == DANN_ID)
    x.add("@dann_ebooks one more", "7", in_reply_to=dann_second)
    await at(poster, fake_time, 0.4)
    assert len([p for p in x.posted() if "reply" in p]) == 2  # the third would make 3 of dann's in the thread
    assert x.tweets[dann_second]["referenced_tweets"][0]["id"] == second

    restarted = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True, max_thread_depth=2)
    await restarted.start()
    fake_server.requests.clear()
    await at(restarted, fake_time, 0.5)
    assert x.posted() == []  # nothing answered twice
    assert fake_server.of("GET", f"/2/users/{DANN_ID}/mentions")[0].query["since_id"] == max(x.tweets, key=int)


async def test_mentions_are_not_read_unless_asked_for(tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    x.add("@dann_ebooks hello", "7")
    poster = x_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    await at(poster, fake_time, 0.1)
    assert fake_server.of("GET", f"/2/users/{DANN_ID}/mentions") == [] and x.posted() == []


async def test_a_429_waits_for_the_reset_and_retries(tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    reset = START + 6 * HOUR + 90
    fake_server.script("POST", "/2/tweets", (429, {"title": "Too Many Requests"}, {"x-rate-limit-reset": str(int(reset))}))
    await at(poster, fake_time, 6)
    assert fake_time.slept == [90.0]
    assert len(fake_server.of("POST", "/2/tweets")) == 2 and len(x.posted()) == 2  # the refused one, then the post
    assert len(x.tweets) == 1


async def test_a_401_stops_the_poster_with_one_line(tmp_path, fake_server, fake_time, service):
    FakeX(fake_server)
    fake_server.script("GET", "/2/users/me", (401, {"title": "Unauthorized"}))
    poster = x_poster(tmp_path, fake_server, service, fake_time)
    with pytest.raises(PosterStopped) as stopped:
        await poster.start()
    message = str(stopped.value)
    assert message.startswith("x: X refused the keys (401)") and "DANN_X_API_KEY" in message
    assert "\n" not in message and "ks" not in message.split()  # one line, and no secret in it


async def test_a_403_on_one_request_is_skipped_and_only_a_403_at_the_start_stops_it(
        tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True)
    await poster.start()
    x.add("@dann_ebooks gone soon", "7", username="sam")  # then deleted: X answers the reply with 403
    fake_server.script("POST", "/2/tweets", (403, {"title": "Forbidden", "detail": "deleted or not visible"}))
    await at(poster, fake_time, 0.1)

    def sent():  # what X took (the fake records the refused request too)
        return [("referenced_tweets" in t) for t in x.tweets.values() if t["author_id"] == DANN_ID]

    assert len(x.posted()) == 1 and sent() == []  # the refused reply, skipped; the poster goes on
    x.add("@dann_ebooks still here?", "8", username="kim")
    await at(poster, fake_time, 0.2, 6.1)
    assert sent() == [True, False]  # kim's answer, then slot 1's post
    fake_server.script("GET", "/2/users/me", (403, {"title": "Forbidden"}))
    with pytest.raises(PosterStopped, match=r"^x: X refused \(403"):
        await x_poster(tmp_path / "again", fake_server, service, fake_time).start()


async def test_a_dry_run_makes_no_post_at_all(tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    x.add("@dann_ebooks hello", "7", username="sam")
    said = []
    poster = x_poster(tmp_path, fake_server, service, fake_time, live=False, said=said, x_replies=True)
    await poster.start()
    await at(poster, fake_time, 0.1, 6, 6.1)
    assert [r.method for r in fake_server.requests if r.method != "GET"] == []
    assert [line.split(":")[0] for line in said] == [
        "[dry run] x would post at 2026-05-29 02", "[dry run] x would answer sam (1000)", "[dry run] x would post"]
    assert not (tmp_path / "poster.json").exists()  # a dry run leaves no record behind


async def test_it_survives_x_disappearing_for_a_minute(tmp_path, fake_server, fake_time, service, caplog):
    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time)
    await poster.start()
    fake_server.stop()
    with caplog.at_level(logging.WARNING, logger="dann.poster"):
        for minute in range(6 * 60, 6 * 60 + 2):
            await at(poster, fake_time, minute / 60)
    assert "cannot reach X" in caplog.text
    fake_server.start()
    await at(poster, fake_time, 6 + 2 / 60)
    assert len(x.posted()) == 1  # the slot's post, once it is back
    await at(poster, fake_time, 6.5)
    assert len(x.posted()) == 1


@pytest.mark.slow
async def test_on_its_scheduler_it_makes_up_missed_slots_once_polls_mentions_and_stops_on_refused_keys(
        tmp_path, fake_server, service):
    x = FakeX(fake_server)
    settings = poster_settings(tmp_path, x_api_url=fake_server.url, x_replies=True, poster_poll_s=1, **KEYS)
    poster = Poster(settings, [XDestination(settings)], service, live=True)  # the real clock and sleep
    # The poster first started 18.5 hours ago and has been down since: slots 1 to 3 were missed.
    poster.record.change("x", since=time.time() - 18.5 * HOUR, slot=0)
    x.add("@dann_ebooks hello there", "7", username="sam")
    run = asyncio.create_task(poster.run())
    deadline = time.monotonic() + 60
    while len(x.posted()) < 2 and not run.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # until the scheduler's first post and the mentions job's reply
    assert [("reply" in p) for p in x.posted()].count(False) == 1  # one post for the three missed slots
    assert [("reply" in p) for p in x.posted()].count(True) == 1
    assert poster.record.of("x")["slot"] == 3
    # Keys revoked while it runs: the next poll of the mentions is refused, and the poster stops.
    fake_server.script("GET", f"/2/users/{DANN_ID}/mentions", (401, {"title": "Unauthorized"}))
    with pytest.raises(PosterStopped, match=r"X refused the keys \(401\)"):
        await asyncio.wait_for(run, 30)
    assert len(x.posted()) == 2


async def test_while_the_owner_has_paused_dann_it_posts_and_answers_nothing(tmp_path, fake_server, fake_time, service):
    from dann.state import store_beside
    from dann.state.pause import Control

    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True)
    await poster.start()
    owner = Control(store_beside(tmp_path))  # as /dann pause writes it, from the bot's process
    owner.pause(None, None)
    x.add("@dann_ebooks are you there?", "7", username="sam")
    await at(poster, fake_time, 6.1, 6.2)
    assert x.posted() == []  # slot 1 skipped, the mention passed over
    owner.resume(None)
    await at(poster, fake_time, 6.3, 12.1)
    assert [("reply" in p) for p in x.posted()] == [False]  # slot 2 posted; the old mention stays unanswered


def test_handles_in_generated_text_mention_nobody_but_the_author_replied_to():
    from dann.poster.destination import neutralised

    text = "@sam ok and @bob.bsky.social and @kim@mastodon.social, mail me@example.com"
    assert neutralised(text) == "＠sam ok and ＠bob.bsky.social and ＠kim@mastodon.social, mail me@example.com"
    assert neutralised(text, keep="Sam").startswith("@sam ok and ＠bob")


async def test_each_author_gets_one_reply_per_cooldown_and_no_handle_of_anyone_else(
        tmp_path, fake_server, fake_time, service, monkeypatch):
    from dann.serving.service import Generation

    async def says_handles(request, **_):
        return Generation(["@sam you and @bob"], 1, 1.0)

    x = FakeX(fake_server)
    poster = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True, poster_author_cooldown_s=3600)
    await poster.start()
    monkeypatch.setattr(service, "generate", says_handles)
    x.add("@dann_ebooks one", "7", username="sam")
    await at(poster, fake_time, 0.1)
    x.add("@dann_ebooks two", "7", username="sam")  # 12 minutes later: inside the hour
    await at(poster, fake_time, 0.3)
    x.add("@dann_ebooks three", "7", username="sam")
    await at(poster, fake_time, 1.2)  # past the hour
    replies = [p["text"] for p in x.posted() if "reply" in p]
    assert replies == ["@sam you and ＠bob", "@sam you and ＠bob"]  # one, two skipped, three answered


async def test_the_thread_walk_reads_no_further_than_priming_and_the_depth_cap_need(
        tmp_path, fake_server, fake_time, service):
    x = FakeX(fake_server)
    above = None
    for i in range(40):  # a long thread between two people, dann nowhere in it
        above = x.add(f"message {i}", "7" if i % 2 else "8", in_reply_to=above)
    x.add("@dann_ebooks what do you think?", "7", in_reply_to=above, username="sam")
    poster = x_poster(tmp_path, fake_server, service, fake_time, x_replies=True, max_thread_depth=2, thread_messages=3)
    await poster.start()
    await at(poster, fake_time, 0.1)
    walked = [r for r in fake_server.of("GET") if r.path.startswith("/2/tweets/")]
    assert 0 < len(walked) <= 2 * 2 + 3  # one request a tweet, not 40
    assert [("reply" in p) for p in x.posted()] == [True]
