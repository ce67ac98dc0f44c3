"""The forget list in the state store: matching, persistence across readers, clear refusals, and
the forget.json of older versions imported once."""

import json

import pytest

from dann.state import Store, store_beside
from dann.voice.forget import MAX_PHRASE_CHARS, ForgetError, ForgetList
from tests.helpers import read_only


def test_matching_ignores_case_accents_punctuation_and_spacing_but_needs_whole_words(tmp_path):
    forget = ForgetList(store_beside(tmp_path))
    assert forget.add("My address is 5 Elm St") and not forget.add("my ADDRESS is 5 elm st.")
    assert forget.match("so... MY address, is 5   élm st!") == "My address is 5 Elm St"
    assert forget.match("my address is 5 elm street") is None  # "st" is a whole word
    forget.add("Ann")
    assert forget.match("the annual party") is None and forget.match("ann said hi") == "Ann"


def test_another_reader_sees_a_change_and_the_list_survives(state_url):
    url = state_url
    writer, reader = ForgetList(Store(url)), ForgetList(Store(url))  # two connections, as two processes have
    assert reader.match("the secret plan") is None and reader.digest() == ""
    writer.add("secret plan")
    assert reader.match("the secret plan") == "secret plan"
    digest = reader.digest()
    assert digest and ForgetList(Store(url)).phrases() == ["secret plan"]
    assert writer.remove("SECRET plan!") and not writer.remove("secret plan")
    assert reader.match("the secret plan") is None and reader.digest() == ""


@pytest.mark.parametrize("phrase, problem", [("", "no letters or digits"), ("  ?! ", "no letters or digits"),
                                             ("x" * 5000, f"at most {MAX_PHRASE_CHARS} characters")])
def test_empty_and_huge_phrases_are_refused(tmp_path, phrase, problem):
    forget = ForgetList(store_beside(tmp_path))
    with pytest.raises(ForgetError, match=problem):
        forget.add(phrase)
    assert forget.phrases() == []


def test_a_database_that_cannot_be_written_is_one_clear_line(tmp_path):
    ForgetList(store_beside(tmp_path)).add("kept")
    forget = ForgetList(read_only(store_beside(tmp_path)))  # as a read-only volume gives it
    with pytest.raises(ForgetError, match=r"^cannot add to the forget list in the state database /\S+state\.db: \w"):
        forget.add("something")
    assert forget.phrases() == ["kept"]


def test_the_old_file_is_imported_once_then_renamed(tmp_path):
    old = tmp_path / "forget.json"
    old.write_text(json.dumps({"phrases": ["secret plan", "Secret  PLAN", "my address"]}))
    forget = ForgetList(store_beside(tmp_path), tmp_path)
    assert forget.phrases() == ["secret plan", "my address"]
    assert not old.exists() and (tmp_path / "forget.json.imported").is_file()
    forget.remove("my address")
    # The same file back (restored from a backup, say) is not imported a second time.
    (tmp_path / "forget.json.imported").rename(old)
    assert ForgetList(store_beside(tmp_path), tmp_path).phrases() == ["secret plan"]


def test_a_damaged_old_file_is_refused_and_nothing_of_it_is_written(tmp_path):
    (tmp_path / "forget.json").write_text('{"phrases": "not a list"}')
    with pytest.raises(ForgetError, match=r"forget\.json: it is not what dann wrote .*fix or remove it"):
        ForgetList(store_beside(tmp_path), tmp_path)
    assert (tmp_path / "forget.json").is_file() and ForgetList(store_beside(tmp_path)).phrases() == []
