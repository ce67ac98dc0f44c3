"""Learning from the person's own accounts (dann/poster/learn.py), against the poster's fake
platforms on 127.0.0.1: public posts and replies stored, the rest kept out and counted, edits and
deletions applied."""

import pytest

from dann.poster.learn import LearnError, MastodonLearner, learn_once, poll_account
from dann.settings import Settings
from dann.state import store_beside
from dann.state.posts import PostStore
from tests.dann.poster.fake_mastodon import FakeMastodon


def learn_settings(tmp_path, **overrides):
    return Settings(_env_file=None, checkpoint_dir=tmp_path, **overrides)


@pytest.fixture
def posts(tmp_path):
    return PostStore(store_beside(tmp_path))


def mastodon_settings(tmp_path, server, **overrides):
    return learn_settings(tmp_path, learn_mastodon_account="@sam@example.social", learn_mastodon_url=server.url,
                          **overrides)


def test_mastodon_public_posts_and_replies_are_stored_and_the_rest_kept_out(tmp_path, fake_server, posts):
    fake = FakeMastodon(fake_server)
    other = fake.status("alice", "someone else's post")
    first = fake.status("sam", "my first public post")
    reply = fake.status("sam", "@alice a reply of mine", in_reply_to=other)
    fake.status("sam", "for my followers", visibility="private")
    fake.status("sam", "quietly", visibility="unlisted")
    fake.status("sam", "@alice psst", visibility="direct")
    fake.boost("sam", other)
    [summary] = learn_once(mastodon_settings(tmp_path, fake_server), posts)
    stored = {p.post_id: p for p in posts.live()}
    assert set(stored) == {first, reply}
    assert (stored[first].kind, stored[first].text) == ("post", "my first public post")
    assert (stored[reply].kind, stored[reply].text) == ("reply", "a reply of mine")  # without the handle
    assert stored[first].account == "@sam@example.social" and stored[first].source == "mastodon"
    assert summary["kept_out"] == {"private": 1, "unlisted": 1, "direct": 1, "boosts": 1}
    assert summary["new"] == 2 and summary["backfill"] is True
    polled = posts.polls()["mastodon @sam@example.social"]  # what `dann corpus --stats` shows
    assert (polled["listed"], polled["kept_out"]) == (2, summary["kept_out"])

    # An edit on the server updates the stored text; a deletion removes the post.
    fake.edit(first, "my first public post, edited")
    fake.delete(reply)
    [again] = learn_once(mastodon_settings(tmp_path, fake_server), posts)
    assert (again["edited"], again["deleted"], again["backfill"]) == (1, 1, False)
    assert [(p.post_id, p.text) for p in posts.live()] == [(first, "my first public post, edited")]


def test_a_long_history_is_paged_then_only_recent_pages_are_read(tmp_path, fake_server, posts):
    fake = FakeMastodon(fake_server)
    ids = [fake.status("sam", f"post number {i}") for i in range(130)]
    learner = MastodonLearner(mastodon_settings(tmp_path, fake_server))
    assert poll_account(learner, posts)["new"] == 130  # backfilled: four pages of 40
    pages = len(fake_server.of("GET", f"/api/v1/accounts/{fake.accounts['sam']['id']}/statuses"))
    assert pages == 4
    fake.delete(ids[-1])  # the newest, within the recent pages
    fake.delete(ids[0])  # the oldest: outside them, so not seen as deleted until a full backfill
    summary = poll_account(learner, posts)
    assert summary["deleted"] == 1 and len(posts.live()) == 129
    assert len(fake_server.of("GET", f"/api/v1/accounts/{fake.accounts['sam']['id']}/statuses")) == pages + 2


def test_an_unknown_account_a_refused_token_and_a_server_that_is_down(tmp_path, fake_server, posts, caplog):
    FakeMastodon(fake_server)
    with pytest.raises(LearnError, match="there is no Mastodon account @nobody@example.social"):
        MastodonLearner(learn_settings(tmp_path, learn_mastodon_account="@nobody@example.social",
                                       learn_mastodon_url=fake_server.url)).poll(None)
    with pytest.raises(LearnError, match="must be @user@server"):
        MastodonLearner(learn_settings(tmp_path, learn_mastodon_account="sam"))
    fake_server.script("GET", "/api/v1/accounts/lookup", (401, {"error": "The access token was revoked"}))
    [refused] = learn_once(mastodon_settings(tmp_path, fake_server, learn_mastodon_token="old"), posts)
    assert "refused the token (401): check DANN_LEARN_MASTODON_TOKEN" in refused["error"]
    fake_server.stop()
    [down] = learn_once(mastodon_settings(tmp_path, fake_server), posts)
    assert down["error"].startswith("cannot reach Mastodon") and "trying again at the next poll" in caplog.text
    assert posts.live() == []  # nothing lost, nothing half-written


def test_bluesky_posts_and_replies_are_stored_reposts_kept_out_and_deletions_applied(tmp_path, fake_server, posts):
    from tests.dann.poster.fake_bluesky import FakeBluesky

    fake = FakeBluesky(fake_server)
    theirs = fake.post("alice.test", "alice's own post")
    mine = fake.post("sam.test", "hello from sam")
    reply = fake.post("sam.test", "@alice.test a reply from sam", parent=theirs)
    quoting = fake.quote("sam.test", "look at this", theirs)
    fake.repost("sam.test", theirs)
    settings = learn_settings(tmp_path, learn_bluesky_handle="@sam.test", learn_bluesky_url=fake_server.url)
    [summary] = learn_once(settings, posts)
    stored = {p.post_id: p for p in posts.live()}
    assert set(stored) == {mine, reply, quoting}
    assert (stored[reply].kind, stored[reply].text) == ("reply", "a reply from sam")
    assert stored[quoting].text == "look at this"  # the quoted post is alice's: not stored
    assert summary["kept_out"] == {"reposts": 1, "quoted_text": 1} and fake.invalid == []
    fake.delete(mine)
    [again] = learn_once(settings, posts)
    assert again["deleted"] == 1 and set(p.post_id for p in posts.live()) == {reply, quoting}
    with pytest.raises(LearnError, match="there is no Bluesky account nobody.test"):
        from dann.poster.learn import BlueskyLearner

        BlueskyLearner(learn_settings(tmp_path, learn_bluesky_handle="nobody.test",
                                      learn_bluesky_url=fake_server.url)).poll(None)


def test_x_tweets_dedup_against_the_archive_retweets_kept_out_and_edits_applied(tmp_path, fake_server, posts, capsys,
                                                                              monkeypatch):
    from tests.dann.poster.fake_x import FakeX
    from tests.helpers import run_main
    from tests.trainer.fixtures import FIXTURES
    from trainer.exports import read_corpus

    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(tmp_path))
    code, _, err = run_main(capsys, "import", str(FIXTURES / "x_archive"))
    assert code == 0, err
    archived = read_corpus(FIXTURES / "x_archive").records
    fake = FakeX(fake_server)
    me = "7"
    for record in archived[:3]:  # the same tweets, as the API lists them: same ids
        fake.add(record.text, me, username="me_dann", tweet_id=record.source_id)
    fresh = fake.add("a brand new tweet", me)
    retweet = fake.retweet(me, fake.add("someone else's words", "8"))
    settings = learn_settings(tmp_path, learn_x_user="@me_dann", learn_x_bearer_token="b3arer",
                              learn_x_api_url=fake_server.url)
    [summary] = learn_once(settings, posts)
    assert (summary["new"], summary["unchanged"], summary["kept_out"]) == (1, 3, {"reposts": 1})
    assert len(posts.live()) == len(archived) + 1 and retweet not in {p.post_id for p in posts.live()}
    # An archived tweet deleted on X since, within the pages read: gone from the store too.
    fake.tweets.pop(archived[2].source_id)
    edited = fake.edit(fresh, "a brand new tweet, edited")
    [again] = learn_once(settings, posts)
    assert again["edited"] == 1 and again["deleted"] == 1 and edited != fresh
    assert archived[2].source_id not in {p.post_id for p in posts.live()}
    assert [p.text for p in posts.live() if p.post_id == fresh] == ["a brand new tweet, edited"]
    assert fake_server.of("GET", "/2/users/7/tweets")[0].headers["authorization"] == "Bearer b3arer"

    fake.protected.add(me)
    with pytest.raises(LearnError, match="@me_dann is protected"):
        from dann.poster.learn import XLearner

        XLearner(settings).poll(None)
    with pytest.raises(LearnError, match="there is no X account @nobody"):
        XLearner(learn_settings(tmp_path, learn_x_user="nobody", learn_x_bearer_token="b",
                                learn_x_api_url=fake_server.url)).poll(None)


def test_corpus_stats_show_what_the_last_polls_kept_out(tmp_path, fake_server, posts, capsys, monkeypatch):
    import json

    from tests.helpers import run_main

    fake = FakeMastodon(fake_server)
    fake.status("sam", "a public post of mine")
    fake.status("sam", "followers only", visibility="private")
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("DANN_LEARN_MASTODON_ACCOUNT", "@sam@example.social")
    monkeypatch.setenv("DANN_LEARN_MASTODON_URL", fake_server.url)
    monkeypatch.delenv("DANN_EXPORT_PATH", raising=False)
    code, out, err = run_main(capsys, "learn")
    assert code == 0, err
    assert json.loads(out)["kept_out"] == {"private": 1}
    code, out, err = run_main(capsys, "corpus", "--stats")
    stats = json.loads(out)
    assert stats["sources"]["mastodon"]["posts"] == 1
    assert stats["learned"]["mastodon @sam@example.social"]["kept_out"] == {"private": 1}
