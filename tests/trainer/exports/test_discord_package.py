"""Discord data packages: the fixture package has a channel in the newer messages.json form, one in
the older messages.csv form, and one holding both."""

import json

import pytest

from tests.trainer.fixtures import FIXTURES, zip_folder, zip_members
from trainer.corpus import CorpusError
from trainer.exports import read_corpus

PACKAGE = FIXTURES / "discord_package"

SERVER = [  # every message is a post: the package has no reply information
    "lol did you see that",  # messages.json
    ":blobcat: hi all :party_parrot:",
    "ping in pls",
    "gm ☀️",
    "look at this one",  # text with an attachment is kept
]
PRIVATE = [  # c2222 is a DM, c3333 a group DM
    "the oldest one :pepe:",  # messages.csv
    "plain old message 😀",  # +02:00 makes it 21:10 UTC, before the 22:54 one
    'ok so, first: "quotes" work\nand so do newlines',
    "from the json copy",  # c3333 has both files: the json one is read
]
EVERYTHING = PRIVATE + SERVER  # in time order


@pytest.fixture
def package_zip(tmp_path):
    return zip_folder(PACKAGE, tmp_path / "package.zip")


def test_dm_channels_are_left_out_unless_asked_for(package_zip):
    assert [r.text for r in read_corpus(package_zip).records] == SERVER
    assert [r.text for r in read_corpus(package_zip, include_dms=True).records] == EVERYTHING


def test_the_zip_gives_every_message_as_a_post_in_time_order(package_zip):
    corpus = read_corpus(package_zip, include_dms=True)
    assert {r.kind for r in corpus.records} == {"post"}
    times = [r.created_at for r in corpus.records]
    assert times == sorted(times) and times[1] == "2020-08-25T21:10:00+00:00"


def test_stats_count_what_was_skipped_and_why(package_zip):
    stats = read_corpus(package_zip).stats()
    assert stats["format"] == "discord package" and (stats["posts"], stats["replies"]) == (5, 0)
    # private: the 4 rows of the DM's messages.csv and the 1 of the group DM's messages.json;
    # empty: one message with nothing at all, one that was only a mention
    assert stats["dropped"] == {"attachment_only": 1, "private": 5, "empty": 2, "link_only": 0, "duplicates": 0}
    with_dms = read_corpus(package_zip, include_dms=True).stats()
    assert with_dms["dropped"] == {"attachment_only": 2, "private": 0, "empty": 2, "link_only": 0, "duplicates": 0}


@pytest.mark.parametrize("channel, label, private", [
    ('{"type": 1}', None, True),  # numeric types, as older packages write them
    ('{"type": 3, "recipients": ["1", "2"]}', None, True),
    ('{"type": 0, "guild": {"id": "9"}}', None, False),
    ('{"type": "PUBLIC_THREAD", "guild": {"id": "9"}}', None, False),
    ('{"id": "1"}', "general in Cool Server", True),  # a channel.json that names no server: in doubt, out
    ('{"type": [1], "guild": "x"}', None, False),  # a type that is no type: the guild decides
    ('[1, 2]', None, True),
    (None, "general in Cool Server", False),  # no channel.json: the index label decides
    (None, "Direct Message with sam#0001", True),
    (None, "Unknown channel", True),
])
def test_private_channels_are_recognised_in_every_package_layout(tmp_path, channel, label, private):
    members = {"messages/index.json": json.dumps({"1": label}),
               "messages/c1/messages.json": '[{"ID": 1, "Timestamp": "", "Contents": "hello there", "Attachments": ""}]'}
    if channel is not None:
        members["messages/c1/channel.json"] = channel
    package = zip_members(tmp_path / "p.zip", members)
    if private:
        with pytest.raises(CorpusError, match=r"dropped: \{.*'private': 1.*left out unless --include-dms"):
            read_corpus(package)
    else:
        assert [r.text for r in read_corpus(package).records] == ["hello there"]
    assert [r.text for r in read_corpus(package, include_dms=True).records] == ["hello there"]


def test_links_become_domains_and_a_post_of_only_links_is_dropped(tmp_path):
    rows = [{"ID": 1, "Timestamp": "", "Contents": "look https://www.youtube.com/watch?v=x1 lol", "Attachments": ""},
            {"ID": 2, "Timestamp": "", "Contents": "https://example.org/a  http://b.example.net", "Attachments": ""}]
    package = zip_members(tmp_path / "p.zip", {
        "messages/index.json": '{"1": "general in S"}', "messages/c1/messages.json": json.dumps(rows)})
    corpus = read_corpus(package)
    assert [r.text for r in corpus.records] == ["look youtube.com lol"]
    assert corpus.dropped["link_only"] == 1


def test_snowflake_ids_stay_exact():
    ids = {r.source_id for r in read_corpus(PACKAGE).records}
    assert "1234567890123456789" in ids  # above 2**53: a float would have rounded it


def test_the_folder_and_the_capitalised_layout_read_the_same(package_zip, tmp_path):
    capitalised = zip_folder(PACKAGE, tmp_path / "new.zip", rename=lambda n: n.replace("messages/", "Messages/", 1))
    expected = read_corpus(package_zip).records
    assert read_corpus(PACKAGE).records == expected
    assert read_corpus(capitalised).records == expected


@pytest.mark.parametrize("contents, text", [
    ("hey <@123456789012345678> and <@!123456789012345678>", "hey and"),
    ("<@&555> <#666> go", "go"),
    ("see <#666>, then", "see, then"),
    ("<:blobcat:998877665544332211><a:parrot:1>", ":blobcat::parrot:"),
])
def test_mention_markup_goes_and_custom_emoji_keep_their_name(tmp_path, contents, text):
    package = zip_members(tmp_path / "p.zip", {
        "messages/index.json": '{"1": "general in Cool Server"}',
        "messages/c1/messages.json": f'[{{"ID": 1, "Timestamp": "2024-01-01 00:00:00", "Contents": "{contents}", '
                                     f'"Attachments": ""}}]'})
    assert [r.text for r in read_corpus(package).records] == [text]


def test_broken_messages_json_names_the_member(tmp_path):
    package = zip_members(tmp_path / "p.zip", {"messages/index.json": "{}", "messages/c1/messages.json": '[{"ID": 1,'})
    with pytest.raises(CorpusError, match=r"p\.zip: messages/c1/messages\.json: broken JSON"):
        read_corpus(package)


def test_an_index_that_is_not_a_mapping_is_refused(tmp_path):
    package = zip_members(tmp_path / "p.zip", {"messages/index.json": "[1, 2]"})
    with pytest.raises(CorpusError, match=r"messages/index\.json: expected an object"):
        read_corpus(package)


def test_a_package_with_no_messages_has_no_posts(tmp_path):
    package = zip_members(tmp_path / "p.zip", {"messages/index.json": "{}"})
    with pytest.raises(CorpusError, match=r"p\.zip: no posts in it"):
        read_corpus(package)
