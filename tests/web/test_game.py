""""Real or dann?" through the API: what may be shown, one vote per visitor and pair, the tally."""

import asyncio
import shutil

import pytest

from dann.serving.votes import Votes
from dann.state import Store
from lstm import checkpoint
from tests.web.conftest import publish_posts, write_package
from tests.web.helpers import make_settings, one_line, serving
from web.app import create_app


def game_settings(game_dir, game_export, **overrides):
    # No export: the page deals the served version's own showable posts, and must not need it.
    return make_settings(game_dir, **{"web_game": True, "export_path": None, **overrides})


async def deal(client):
    response = await client.post("/api/game/pair")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_pairs_show_only_validation_posts_that_are_public_and_votes_count_once(game_dir, game_export):
    async def scenario():
        app = create_app(game_settings(game_dir, game_export))
        async with serving(app) as visitor, serving(app, lifespan=False) as stranger:
            pairs = [await deal(visitor) for _ in range(12)]
            first = pairs[0]
            real_side = "a" if first["a"] in game_export.shown else "b"
            right = await visitor.post("/api/game/vote", json={"pair": first["pair"], "pick": real_side})
            again = await visitor.post("/api/game/vote", json={"pair": first["pair"], "pick": real_side})
            # The pair was dealt to the first visitor: another (no cookie, or another cookie) cannot vote on it.
            theirs = await stranger.post("/api/game/vote", json={"pair": pairs[1]["pair"], "pick": "a"})
            stranger.cookies.set("dann_visitor", "x" * 22)
            forged = await stranger.post("/api/game/vote", json={"pair": pairs[1]["pair"], "pick": "a"})
            fake_side = "b" if pairs[1]["a"] in game_export.shown else "a"
            fooled = await visitor.post("/api/game/vote", json={"pair": pairs[1]["pair"], "pick": fake_side})
            status = (await visitor.get("/api/status")).json()
            return pairs, right, again, theirs, forged, fooled, status

    pairs, right, again, theirs, forged, fooled, status = asyncio.run(scenario())
    for pair in pairs:
        real = [text for text in (pair["a"], pair["b"]) if text in game_export.shown]
        assert len(real) == 1, pair  # exactly one side is a showable real post
        assert not {pair["a"], pair["b"]} & game_export.hidden  # never a DM, a training post, a forgotten one
    assert {p["a"] for p in pairs} | {p["b"] for p in pairs} & game_export.shown  # it varies
    assert right.status_code == 200 and right.json()["correct"] is True
    assert right.json()["tally"] == {"votes": 1, "fooled": 0, "fool_rate": 0.0, "low": 0.0, "high": 0.7935}
    assert again.status_code == 409 and one_line(again) == "you have already voted on this pair"
    assert theirs.status_code == 404 and forged.status_code == 404
    assert fooled.json()["correct"] is False and fooled.json()["tally"]["fooled"] == 1
    assert status["game"] == {"enabled": True, "tally": fooled.json()["tally"]}
    version = pairs[0]["model_version"]
    # Saved: another process (`dann status`, the bot) opening the database reads the same tally.
    saved = Votes(Store(f"sqlite:///{game_dir / 'state.db'}")).of(version)
    assert (saved["votes"], saved["fooled"]) == (2, 1)


@pytest.mark.slow
def test_the_game_is_off_unless_asked_for_and_says_what_it_lacks(game_dir, game_export, trained_dir, tmp_path):
    async def scenario(settings):
        async with serving(create_app(settings)) as client:
            return (await client.post("/api/game/pair"), await client.post("/api/game/vote", json={"pair": "x", "pick": "a"}),
                    (await client.get("/api/status")).json())

    off, vote, status = asyncio.run(scenario(make_settings(game_dir)))
    assert off.status_code == 404 and "DANN_WEB_GAME" in one_line(off)
    assert vote.status_code == 404 and status["game"] == {"enabled": False, "tally": {
        "votes": 0, "fooled": 0, "fool_rate": None, "low": 0.0, "high": 1.0}}
    # A version published before versions carried their posts: nothing to show, and no export to fall back on.
    older = shutil.copytree(trained_dir, tmp_path / "older")
    served = checkpoint.load_latest(older)
    checkpoint.save(older, served.version + 1, served.model, served.vocab, served.info,
                    copy_index=served.copy_index, lexicon=served.lexicon, ngram=served.ngram)
    without, _, _ = asyncio.run(scenario(game_settings(older, game_export)))
    assert without.status_code == 503 and one_line(without) == (
        f"the game cannot start: model version {served.version + 1} was published without the posts the game "
        "may show; the next training run publishes a version with them")
    # Every validation post is longer than dann may write: none may be shown.
    long_posts = shutil.copytree(trained_dir, tmp_path / "long")
    publish_posts(long_posts, write_package(tmp_path / "long-package", [f"post {i:02d} " + "and on " * 12 for i in range(60)], []))
    too_long, _, _ = asyncio.run(scenario(game_settings(long_posts, game_export)))
    assert too_long.status_code == 503 and "no validation post of the served model may be shown" in one_line(too_long)


def test_a_bad_vote_gets_one_line_naming_the_field(game_dir, game_export):
    async def scenario():
        async with serving(create_app(game_settings(game_dir, game_export)), lifespan=False) as client:
            return [await client.post("/api/game/vote", json=body) for body in
                    ({"pair": "x", "pick": "c"}, {"pick": "a"}, {"pair": "x", "pick": "a", "extra": 1}, [1])]

    pick, missing, extra, shape = asyncio.run(scenario())
    assert one_line(pick) == "pick must be 'a' or 'b', got \"c\""
    assert one_line(missing) == "pair is missing; the fields are pair and pick"
    assert one_line(extra) == "unknown field 'extra'; the fields are pair and pick"
    assert one_line(shape).startswith('the request body must be a JSON object such as {"pair"')


def test_a_phrase_forgotten_while_the_game_runs_is_never_shown_again(game_dir, game_export, tmp_path):
    from dann.serving.service import GenerationService
    from dann.state import store_beside
    from dann.voice.filters import Filters
    from dann.voice.forget import ForgetList

    target = sorted(game_export.shown)[0]
    phrase = " ".join(target.split()[1:3])  # "post 90": in this post only

    async def scenario():
        service = GenerationService(game_dir, max_chars=60, poll_s=0.05, filters=Filters(forget=ForgetList(store_beside(game_dir))))
        app = create_app(game_settings(game_dir, game_export), service)
        await service.start()
        try:
            async with serving(app, lifespan=False) as client:
                before = [await deal(client) for _ in range(3)]
                ForgetList(store_beside(game_dir)).add(phrase)
                after = [await deal(client) for _ in range(15)]
        finally:
            await service.stop()
        return before, after

    _, after = asyncio.run(scenario())
    shown = {text for pair in after for text in (pair["a"], pair["b"])}
    assert target not in shown and len(shown & game_export.shown) >= 2


@pytest.mark.slow
def test_signed_ids_a_cap_per_client_and_a_vote_saved_before_its_pair_is_marked(game_dir, game_export, monkeypatch):
    from dann.state import StateError

    async def scenario():
        app = create_app(game_settings(game_dir, game_export, web_game_votes_per_client=2))
        async with serving(app) as visitor:
            pairs = [await deal(visitor) for _ in range(3)]
            cookie = visitor.cookies["dann_visitor"]
            assert cookie.count(".") == 1 and len(cookie.split(".")[1]) == 32  # the id, and the server's signature
            real = app.state.votes.add

            def fails_once(version, fooled):
                monkeypatch.setattr(app.state.votes, "add", real)
                raise StateError("cannot count a vote in the state database /data/state/state.db: disk I/O error")

            monkeypatch.setattr(app.state.votes, "add", fails_once)
            failed = await visitor.post("/api/game/vote", json={"pair": pairs[0]["pair"], "pick": "a"})
            again = await visitor.post("/api/game/vote", json={"pair": pairs[0]["pair"], "pick": "a"})
            second = await visitor.post("/api/game/vote", json={"pair": pairs[1]["pair"], "pick": "a"})
            capped = await visitor.post("/api/game/vote", json={"pair": pairs[2]["pair"], "pick": "a"})
            return failed, again, second, capped

    failed, again, second, capped = asyncio.run(scenario())
    assert failed.status_code == 503 and "/" not in one_line(failed)  # one line, no path
    assert again.status_code == 200 and second.status_code == 200  # the failed vote left the pair open
    assert capped.status_code == 429 and "as often as one visitor's votes count" in one_line(capped)


def test_why_shows_the_closest_public_posts_and_how_new_a_text_is(game_dir, game_export):
    async def scenario():
        async with serving(create_app(game_settings(game_dir, game_export))) as client:
            return [await client.post("/api/why", json=body) for body in
                    ({"text": "a server post 95 about tea for sam"}, {"text": "secret dm 95 for sam"}, {"text": ""},
                     {"words": "x"}, {"text": "x" * 2001})]

    found, secret, empty, wrong, huge = asyncio.run(scenario())
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["posts"] and all(post["text"] in game_export.shown | game_export.hidden for post in body["posts"])
    assert all(post["text"].startswith("server post") for post in body["posts"])  # never a DM
    assert body["posts"][0]["text"] == "server post 95 about tea"  # the post of its longest run, first
    assert body["posts"][0]["shared"] == ["server", "post", "95", "about", "tea"]
    assert body["posts"][0]["id"].isdigit()
    assert (body["longest_run"], body["run"]) == (5, "server post 95 about tea")
    assert body["summary"].startswith("New text: the longest run of words it shares with any one post is")
    assert body["model_version"] == pairs_version(game_dir)
    # The DMs were trained on (DANN_INCLUDE_DMS) but are in no published post: nothing to show for them.
    assert [post["text"] for post in secret.json()["posts"]] == ["server post 95 about tea"]
    assert empty.status_code == wrong.status_code == huge.status_code == 422
    assert one_line(wrong) == "text is missing; the fields are text; unknown field 'words'; the fields are text"
    assert one_line(huge).startswith("text must be the text dann wrote, 1 to 2000 characters")


def pairs_version(directory) -> int:
    return checkpoint.versions(directory)[0]
