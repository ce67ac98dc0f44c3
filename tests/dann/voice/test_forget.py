"""The forget list on disk: matching, persistence across readers, and clear refusals."""

import pytest

from dann.voice.forget import MAX_PHRASE_CHARS, ForgetError, ForgetList


def test_matching_ignores_case_accents_punctuation_and_spacing_but_needs_whole_words(tmp_path):
    forget = ForgetList(tmp_path)
    assert forget.add("My address is 5 Elm St") and not forget.add("my ADDRESS is 5 elm st.")
    assert forget.match("so... MY address, is 5   élm st!") == "My address is 5 Elm St"
    assert forget.match("my address is 5 elm street") is None  # "st" is a whole word
    forget.add("Ann")
    assert forget.match("the annual party") is None and forget.match("ann said hi") == "Ann"


def test_another_reader_sees_a_change_and_the_list_survives(tmp_path):
    writer, reader = ForgetList(tmp_path), ForgetList(tmp_path)
    assert reader.match("the secret plan") is None and reader.digest() == ""
    writer.add("secret plan")
    assert reader.match("the secret plan") == "secret plan"
    digest = reader.digest()
    assert digest and ForgetList(tmp_path).phrases() == ["secret plan"]
    assert writer.remove("SECRET plan!") and not writer.remove("secret plan")
    assert reader.match("the secret plan") is None and reader.digest() == ""


@pytest.mark.parametrize("phrase, problem", [("", "no letters or digits"), ("  ?! ", "no letters or digits"),
                                             ("x" * 5000, f"at most {MAX_PHRASE_CHARS} characters")])
def test_empty_and_huge_phrases_are_refused(tmp_path, phrase, problem):
    with pytest.raises(ForgetError, match=problem):
        ForgetList(tmp_path).add(phrase)
    assert not (tmp_path / "forget.json").exists()


def test_a_directory_that_cannot_be_written_is_one_clear_line():
    # sysfs refuses new files even to root, as a read-only volume does.
    with pytest.raises(ForgetError, match=r"^cannot write the forget list /sys/forget\.json: \w"):
        ForgetList("/sys").add("something")
    assert ForgetList("/sys").phrases() == []


def test_a_damaged_file_is_refused_rather_than_ignored(tmp_path):
    (tmp_path / "forget.json").write_text('{"phrases": "not a list"}')
    with pytest.raises(ForgetError, match="is damaged"):
        ForgetList(tmp_path).match("anything")
