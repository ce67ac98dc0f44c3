"""The game's votes: per model version, in the state store every process reads, with a Wilson interval."""

import json

import pytest

from dann.serving.votes import Votes, render, wilson
from dann.state import Store, store_beside


@pytest.mark.parametrize(("fooled", "votes", "low", "high"), [
    (0, 0, 0.0, 1.0),
    (5, 10, 0.2366, 0.7634),  # the textbook example: 50 % of 10
    (0, 10, 0.0, 0.2775),
    (30, 100, 0.2189, 0.3958),
])
def test_the_wilson_interval(fooled, votes, low, high):
    assert wilson(fooled, votes) == pytest.approx((low, high), abs=1e-4)


def test_votes_are_kept_per_version_and_seen_by_another_reader(state_url):
    url = state_url
    writer, reader = Votes(Store(url)), Votes(Store(url))
    assert reader.of(3) == {"votes": 0, "fooled": 0, "fool_rate": None, "low": 0.0, "high": 1.0}
    writer.add(3, fooled=True)
    writer.add(3, fooled=False)
    tally = writer.add(4, fooled=False)
    assert tally["votes"] == 1 and reader.of(3)["votes"] == 2 and reader.of(3)["fooled"] == 1
    assert reader.of(3)["fool_rate"] == 0.5


def test_the_old_file_is_imported_once_and_an_unreadable_one_is_left_alone(tmp_path):
    old = tmp_path / "game.json"
    old.write_text(json.dumps({"versions": {"7": {"votes": 40, "fooled": 13}}}))
    votes = Votes(store_beside(tmp_path), old)
    assert votes.of(7)["fooled"] == 13 and votes.add(7, fooled=True)["votes"] == 41
    assert not old.exists() and (tmp_path / "game.json.imported").is_file()
    # A damaged file stops nothing: counting goes on, and the file stays for the owner to fix.
    other = tmp_path / "elsewhere" / "votes.json"
    other.parent.mkdir()
    other.write_text("{not json")
    assert Votes(store_beside(other.parent), other).add(1, fooled=True)["fooled"] == 1
    assert other.read_text() == "{not json"


def test_the_sentence_for_status():
    assert render({"votes": 0, "fooled": 0, "fool_rate": None, "low": 0, "high": 1}) == (
        "Real or dann?: no votes on this version yet.")
    assert render({"votes": 40, "fooled": 12, "fool_rate": 0.3, "low": 0.1808, "high": 0.4527}) == (
        "Real or dann?: it fooled 12 of 40 votes on this version (30%, 95% interval 18% to 45%; 50% is as good "
        "as real).")
