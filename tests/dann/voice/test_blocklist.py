"""The blocklist: disguised spellings are caught, innocent longer words are not, and the files an
owner gives are refused with one line when they cannot be used."""

import pytest

from dann.settings import Settings
from dann.voice.blocklist import Blocklist, BlocklistError
from dann.voice.filters import blocklist_for


@pytest.mark.parametrize("text", ["n.i.c.e", "N1CE", "n i c e", "what a NICE day", "so n!ce", "Ñíçé", "niiiice",
                                  "n-i-c-e", "such nices", "nice."])
def test_disguised_spellings_of_a_listed_word_are_caught(text):
    assert Blocklist(["nice"]).match(text) == "nice"


@pytest.mark.parametrize("text", ["niceties", "a venice trip", "nic e", "ni ce day"])
def test_longer_words_and_unrelated_text_are_not(text):
    assert Blocklist(["nice"]).match(text) is None


def test_terms_of_several_words_match_across_spaces_and_hyphens():
    blocklist = Blocklist(["bad phrase"])
    assert blocklist.match("a BAD-phrase here") == blocklist.match("bad  phrase") == "badphrase"
    assert Blocklist(["gook"]).match("go ok then") is None  # single words are not joined across spaces


def test_the_default_list_has_slurs_but_not_swearing_or_everyday_words():
    default = Blocklist.default()
    assert len(default) > 40
    assert default.match("you r3t4rd") == "retard"
    for ordinary in ("well shit, that is crazy and dumb", "what a night", "go ok", "Scunthorpe", "damn it"):
        assert default.match(ordinary) is None, ordinary


def test_settings_choose_the_lists(tmp_path):
    own = tmp_path / "words.txt"
    own.write_text("# mine\nPineapple\n\n", encoding="utf-8")
    both = blocklist_for(Settings(_env_file=None, blocklist_file=own))
    assert both.match("pine.apple") and both.match("retard")
    only_own = blocklist_for(Settings(_env_file=None, blocklist="off", blocklist_file=own))
    assert only_own.match("pineapple") and not only_own.match("retard")
    assert blocklist_for(Settings(_env_file=None, blocklist="off")) is None


def test_a_missing_or_non_utf8_file_is_one_clear_line(tmp_path):
    with pytest.raises(BlocklistError, match=r"nope\.txt: no such file \(DANN_BLOCKLIST_FILE\)"):
        Blocklist.from_file(tmp_path / "nope.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(BlocklistError, match=r"latin1\.txt: not UTF-8 text \(byte 3\)"):
        Blocklist.from_file(latin1)


def test_an_owners_list_joined_to_the_default_keeps_terms_of_several_words():
    both = Blocklist(["street shitter"]) | Blocklist(["foo"])
    assert both.match("you street shitter") == "streetshitter" and both.match("foo") == "foo"
    with_default = Blocklist.default() | Blocklist(["street shitter"])
    assert with_default.match("you street shitter") == "streetshitter"


def test_a_term_glued_inside_a_longer_word_is_found_where_it_must_be():
    blocklist = Blocklist(["dishwasher"])
    assert blocklist.match("dishwasherndd~, we") is None  # served text is judged by whole words
    assert blocklist.glued("dishwasherndd~, we") == "dishwasher"  # a prompt or a fallback: anywhere
    assert blocklist.glued("d1shw4sher") == "dishwasher" and blocklist.glued("the dishes, washed") is None
    # Short terms hide inside ordinary words: inside a word, only terms of five letters or more count.
    for ordinary in ("good night", "goodnight!", "some spice", "a raccoon in Japan", "Scunthorpe"):
        assert Blocklist.default().glued(ordinary) is None, ordinary
