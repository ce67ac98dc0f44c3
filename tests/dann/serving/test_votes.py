"""The game's votes: per model version, in a file every process rereads, with a Wilson interval."""

import pytest

from dann.serving.votes import Votes, render, wilson


@pytest.mark.parametrize(("fooled", "votes", "low", "high"), [
    (0, 0, 0.0, 1.0),
    (5, 10, 0.2366, 0.7634),  # the textbook example: 50 % of 10
    (0, 10, 0.0, 0.2775),
    (30, 100, 0.2189, 0.3958),
])
def test_the_wilson_interval(fooled, votes, low, high):
    assert wilson(fooled, votes) == pytest.approx((low, high), abs=1e-4)


def test_votes_are_kept_per_version_and_seen_by_another_reader(tmp_path):
    path = tmp_path / "game.json"
    writer, reader = Votes(path), Votes(path)
    assert reader.of(3) == {"votes": 0, "fooled": 0, "fool_rate": None, "low": 0.0, "high": 1.0}
    writer.add(3, fooled=True)
    writer.add(3, fooled=False)
    tally = writer.add(4, fooled=False)
    assert tally["votes"] == 1 and reader.of(3)["votes"] == 2 and reader.of(3)["fooled"] == 1
    assert reader.of(3)["fool_rate"] == 0.5


def test_an_unreadable_file_starts_the_count_again(tmp_path):
    path = tmp_path / "game.json"
    path.write_text("{not json")
    assert Votes(path).of(1)["votes"] == 0
    assert Votes(path).add(1, fooled=True)["fooled"] == 1


def test_the_sentence_for_status():
    assert render({"votes": 0, "fooled": 0, "fool_rate": None, "low": 0, "high": 1}) == (
        "Real or dann?: no votes on this version yet.")
    assert render({"votes": 40, "fooled": 12, "fool_rate": 0.3, "low": 0.1808, "high": 0.4527}) == (
        "Real or dann?: it fooled 12 of 40 votes on this version (30%, 95% interval 18% to 45%; 50% is as good "
        "as real).")
