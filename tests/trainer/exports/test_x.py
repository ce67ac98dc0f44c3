"""X archives: the fixture archive (two tweet parts, replies, retweets, entities, emoji, a long note
tweet) read as a zip, a folder and a single file, plus the older layouts and the ways they break."""

import json
import zipfile

import pytest

from tests.trainer.fixtures import FIXTURES, zip_folder, zip_members
from trainer.corpus import CorpusError
from trainer.exports import archive, read_corpus

X_ARCHIVE = FIXTURES / "x_archive"

EXPECTED = [  # the fixture archive, in time order
    ("post", "first tweet! hello world"),
    ("reply", "haha yes & no"),
    ("post", "so true twitter.com"),
    ("post", "read this"),
    ("post", "tea > coffee, fight me ☕️ example.org"),
    ("reply", "ok but &lt; is how you write < in html 😅"),
    ("post", "Some thoughts on night trains, since people keep asking. First: the sleeper from Vienna to Hamburg "
             "is the best way to cross Europe if you have a day to spare and like waking up somewhere new. Second: "
             "book the couchette, not the seat. Third: bring snacks, because the dining car closes at nine & never "
             "opens on time. More: seat61.com Fourth: it is worth it. 🚂"),
    ("reply", "second: bring earplugs 🚆"),
    ("post", "morning\n\nfriends 🌞 👩\u200d💻 shipping it"),
    ("reply", "@sam is right, you know"),
]


@pytest.fixture
def x_zip(tmp_path):
    return zip_folder(X_ARCHIVE, tmp_path / "twitter-2024-03-11-abc123.zip")


def texts(corpus):
    return [(r.kind, r.text) for r in corpus.records]


def by_id(corpus):
    return {r.source_id: r for r in corpus.records}


def tweets_js(*tweets, slice_="tweets.part0"):
    return f"window.YTD.{slice_} = " + json.dumps([{"tweet": t} for t in tweets], indent=2, ensure_ascii=False)


def test_the_zip_gives_posts_and_replies_in_time_order(x_zip):
    corpus = read_corpus(x_zip)
    assert texts(corpus) == EXPECTED
    times = [r.created_at for r in corpus.records]
    assert times[0] == "2012-01-02T10:00:00+00:00" and times == sorted(times)


def test_the_unzipped_folder_reads_the_same_as_the_zip(x_zip):
    assert read_corpus(X_ARCHIVE).records == read_corpus(x_zip).records


def test_stats_count_what_was_dropped(x_zip):
    stats = read_corpus(x_zip).stats()
    assert stats["format"] == "x archive"
    assert (stats["posts"], stats["replies"]) == (6, 4)
    # link_only: the post that was only a photo's t.co link
    assert stats["dropped"] == {"retweets": 2, "link_only": 1, "empty": 1, "duplicates": 1, "unmatched_notes": 1}
    assert stats["chars"] == sum(len(text) for _, text in EXPECTED)


def test_other_archive_files_are_not_read_as_posts(x_zip):
    everything = " ".join(r.text for r in read_corpus(x_zip).records)
    assert "deleted" not in everything and "liked" not in everything  # deleted-tweets.js, like.js


def test_html_entities_are_unescaped_once_not_twice(x_zip):
    tweet = by_id(read_corpus(x_zip))["1700000000000000102"]
    assert "&lt; is how you write <" in tweet.text  # "&amp;lt;" was typed as "&lt;"


def test_tco_links_become_the_domain_and_media_links_go(x_zip):
    records = by_id(read_corpus(x_zip))
    assert records["1700000000000000101"].text.endswith("example.org")  # www. dropped
    assert records["150000000000000006"].text == "read this"  # a t.co with no expansion is removed
    assert "1700000000000000105" not in records  # only a photo link: empty after cleaning
    assert not any("t.co" in r.text for r in records.values())


def test_a_reply_loses_the_handles_x_filled_in(x_zip):
    records = by_id(read_corpus(x_zip))
    assert records["1700000000000000102"].text.startswith("ok but")  # via display_text_range
    assert records["150000000000000002"].text == "haha yes & no"  # an old reply without it: by regex
    assert records["1700000000000000110"].text == "@sam is right, you know"  # range starts at 0: typed on purpose
    assert "1700000000000000106" not in records  # nothing but handles


def test_retweets_are_dropped_by_prefix_and_by_flag(x_zip):
    records = by_id(read_corpus(x_zip))
    assert "1700000000000000103" not in records and "1700000000000000104" not in records


def test_a_long_note_tweet_replaces_its_cut_copy_even_when_a_thread_reply_is_closer_in_time(x_zip):
    records = by_id(read_corpus(x_zip))
    long_post = records["1700000000000000107"]
    assert len(long_post.text) > 280 and long_post.text.endswith("worth it. 🚂") and "…" not in long_post.text
    assert records["1700000000000000108"].text == "second: bring earplugs 🚆"


def test_exact_duplicates_keep_the_first(x_zip):
    records = by_id(read_corpus(x_zip))
    assert "1700000000000000101" in records and "1700000000000000003" not in records


def test_a_single_tweets_js_file_is_read_with_the_note_beside_it():
    corpus = read_corpus(X_ARCHIVE / "data" / "tweets.js")
    assert corpus.format == "x tweets.js"
    assert texts(corpus) == EXPECTED[4:]  # tweets-part1.js held the older ones


def test_old_tweet_js_with_unwrapped_items_and_a_trailing_semicolon(tmp_path):
    bare = {"id_str": "1", "created_at": "Wed Oct 10 20:19:24 +0000 2018", "full_text": "old layout 🐦"}
    path = tmp_path / "tweet.js"
    path.write_text("window.YTD.tweet.part0 = " + json.dumps([bare]) + ";\n")
    corpus = read_corpus(path)
    assert texts(corpus) == [("post", "old layout 🐦")]
    assert corpus.records[0].created_at == "2018-10-10T20:19:24+00:00"


def test_grailbird_months_are_read_and_tweets_csv_beside_them_is_not_read_twice(tmp_path):
    month = [
        {"id_str": "2", "created_at": "2012-01-31 21:44:55 +0000", "text": "@bob nope &amp; never", "user": {},
         "in_reply_to_status_id_str": "1", "entities": {"urls": [], "user_mentions": []}},
        {"id_str": "3", "created_at": "2012-01-30 08:00:00 +0000", "text": "RT @bob: hi", "user": {},
         "retweeted_status": {"id_str": "9"}, "entities": {}},
        {"id_str": "4", "created_at": "2012-01-29 08:00:00 +0000", "text": "grailbird https://t.co/g1", "user": {},
         "entities": {"urls": [{"url": "https://t.co/g1", "expanded_url": "http://blog.example.com/x"}]}},
    ]
    csv_text = "tweet_id,in_reply_to_status_id,timestamp,text\n2,1,2012-01-31 21:44:55 +0000,from the csv\n"
    archive = zip_members(tmp_path / "old.zip", {
        "data/js/tweets/2012_01.js": "Grailbird.data.tweets_2012_01 = \n" + json.dumps(month),
        "data/js/tweet_index.js": "var tweet_index = []", "tweets.csv": csv_text})
    corpus = read_corpus(archive)
    assert texts(corpus) == [("post", "grailbird blog.example.com"), ("reply", "nope & never")]
    assert corpus.format == "x archive (grailbird)" and corpus.dropped["retweets"] == 1


def test_tweets_csv(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text(
        "tweet_id,in_reply_to_status_id,in_reply_to_user_id,timestamp,source,text,retweeted_status_id,"
        "retweeted_status_user_id,retweeted_status_timestamp,expanded_urls\n"
        '5,,,2013-01-02 10:00:00 +0000,web,"a, b and ""c""\nacross lines https://t.co/c1",,,,http://a.example/1\n'
        "6,5,42,2013-01-03 10:00:00 +0000,web,@sam @al yes &gt; no,,,,\n"
        "7,,,2013-01-04 10:00:00 +0000,web,RT @sam: hey,99,42,2013-01-01 10:00:00 +0000,\n"
        "4,,,2013-01-01 10:00:00 +0000,web,earliest,,,,\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert texts(corpus) == [("post", "earliest"), ("post", 'a, b and "c"\nacross lines a.example'),
                             ("reply", "yes > no")]
    assert corpus.dropped["retweets"] == 1


def test_tweets_part_files_are_all_read(tmp_path):
    tweet = {"id_str": "1", "created_at": "Wed Oct 10 20:19:24 +0000 2018", "full_text": "part {}"}
    members = {f"data/tweets-part{n}.js": tweets_js({**tweet, "id_str": str(n), "full_text": f"part {n}"},
                                                    slice_=f"tweets.part{n}") for n in (2, 10)}
    corpus = read_corpus(zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js(), **members}))
    assert sorted(r.text for r in corpus.records) == ["part 10", "part 2"]


def test_broken_json_names_the_file_and_the_line(tmp_path):
    broken = tweets_js({"id_str": "1", "full_text": "fine"}).replace('"fine"', '"fine" "oops"')
    archive = zip_members(tmp_path / "x.zip", {"data/tweets.js": broken})
    with pytest.raises(CorpusError, match=r"x\.zip: data/tweets\.js: broken JSON at line 5"):
        read_corpus(archive)


def test_a_data_file_without_the_assignment_is_refused(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text("alert('hi')")
    with pytest.raises(CorpusError, match="tweets.js: does not start with `window.YTD"):
        read_corpus(path)


def test_a_zip_with_no_tweets_in_it(tmp_path):
    archive = zip_members(tmp_path / "x.zip", {"Your archive.html": "<html></html>", "data/like.js": "[]"})
    with pytest.raises(CorpusError, match=r"x\.zip: this zip is neither an X archive .* nor a Discord"):
        read_corpus(archive)


def test_an_archive_whose_tweets_are_all_retweets_has_no_posts(tmp_path):
    archive = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"id_str": "1", "full_text": "RT @a: b"})})
    with pytest.raises(CorpusError, match=r"x\.zip: no posts in it after cleaning .*'retweets': 1"):
        read_corpus(archive)


def test_a_truncated_zip(x_zip):
    data = x_zip.read_bytes()
    x_zip.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="is not a readable zip"):
        read_corpus(x_zip)


def test_a_member_that_is_not_utf8(tmp_path):
    archive = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"full_text": "caf\xe9"}).encode("latin-1")})
    with pytest.raises(CorpusError, match=r"x\.zip: data/tweets\.js: is not UTF-8"):
        read_corpus(archive)


@pytest.mark.parametrize("evil", ["../evil.js", "data/../../evil.js", "/etc/evil.js", "C:/evil.js", "..\\evil.js",
                                  "../outside/"])
def test_a_zip_whose_members_escape_the_folder_is_refused(tmp_path, evil):
    archive = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"full_text": "hi"}), evil: "boom"})
    with pytest.raises(CorpusError, match="points outside the archive"):
        read_corpus(archive)


def test_a_member_larger_than_the_cap_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_TEXT_BYTES", 100)
    path = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"full_text": "x" * 200})})
    with pytest.raises(CorpusError, match=r"data/tweets\.js: .* too large"):
        read_corpus(path)


def test_reading_never_changes_or_adds_files(x_zip):
    before = {p: p.read_bytes() for p in x_zip.parent.rglob("*")}
    read_corpus(x_zip)
    broken = x_zip.with_name("broken.zip")
    broken.write_bytes(x_zip.read_bytes()[:100])
    before[broken] = broken.read_bytes()
    with pytest.raises(CorpusError):
        read_corpus(broken)
    assert {p: p.read_bytes() for p in x_zip.parent.rglob("*")} == before
    assert zipfile.is_zipfile(x_zip)
