""""Why did you say that?": the posts a version publishes, and `dann why` on a model trained on a fixture export."""

import json

import pytest

from dann.state import store_beside
from dann.voice.blocklist import Blocklist
from dann.voice.forget import ForgetList
from lstm.schema import TrainConfig
from tests.helpers import assert_one_line_error, run_main
from tests.trainer.fixtures import FIXTURES
from trainer.data import prepare
from trainer.exports import read_corpus

PACKAGE = FIXTURES / "discord_package"
TINY = ["--steps", "30", "--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "16",
        "--eval-every", "30", "--min-char-count", "1", "--dropout", "0", "--weight-drop", "0"]


def test_the_published_posts_leave_out_dms_forgotten_and_blocked_posts(tmp_path):
    everything = read_corpus(PACKAGE, include_dms=True)
    private = {r.text for r in everything.records if r.private}
    assert private and not private & {r.text for r in read_corpus(PACKAGE).records}  # the test means something
    forget = ForgetList(store_beside(tmp_path))
    forget.add("look at this one")
    blocked = Blocklist(["pls"])
    data = prepare(everything.without(forget), TrainConfig(seq_len=8, val_fraction=0.3, min_char_count=1),
                   blocklist=blocked)
    texts = {post.text for post in data.post_index.posts}
    assert texts and not texts & private
    assert not any("look at this one" in text or blocked.match(text) for text in texts)
    # Trained on the DMs (they were asked for), shown never: the model's corpus still has them.
    assert private <= {r.text for r in data.corpus.records}
    shown_val = {post.text for post in data.post_index.posts if post.val}
    assert shown_val == {r.text for r in data.val_records if not r.private and not blocked.match(r.text)}
    assert all(post.id and post.id.isdigit() for post in data.post_index.posts)  # each with its source id


@pytest.mark.slow
def test_dann_why_on_a_model_trained_on_the_fixture_export(tmp_path, capsys, monkeypatch):
    checkpoints = tmp_path / "ckpt"
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(checkpoints))
    code, _, err = run_main(capsys, "forget", "ping in pls")
    assert code == 0, err
    code, _, err = run_main(capsys, "train", str(PACKAGE), "--include-dms", "--quiet", *TINY)
    assert code == 0, err

    code, out, err = run_main(capsys, "why", "lol did you see the oldest one", "--json")
    assert code == 0, err
    found = json.loads(out)
    texts = [post["text"] for post in found["posts"]]
    assert "lol did you see that" in texts  # a real post sharing its words, with its id and the words
    assert found["posts"][texts.index("lol did you see that")]["id"] == "1234567890123456789"
    assert "the oldest one :pepe:" not in texts  # a DM, trained on but never shown
    assert (found["longest_run"], found["run"]) == (4, "lol did you see")
    assert found["summary"].startswith("New text: the longest run of words it shares with any one post is 4 words")

    # Forgotten before training: never published, so not even its words are found.
    code, out, _ = run_main(capsys, "why", "ping in pls now", "--json")
    assert (json.loads(out)["posts"], json.loads(out)["longest_run"]) == ([], 0)
    # Forgotten after the version was published: it is checked again when asked.
    run_main(capsys, "forget", "did you see")
    code, out, _ = run_main(capsys, "why", "lol did you see the oldest one", "--json")
    found = json.loads(out)
    assert "lol did you see that" not in [post["text"] for post in found["posts"]] and found["run"] == ""

    code, out, _ = run_main(capsys, "why", "gm all")
    assert code == 0 and out.startswith("New text: the longest run")


def test_dann_why_without_a_model_is_one_line(tmp_path, capsys):
    code, _, err = run_main(capsys, "why", "hello", "--checkpoint-dir", str(tmp_path))
    assert_one_line_error(code, err, "no checkpoint")


def test_the_post_a_run_of_words_came_from_comes_first_even_without_a_rare_word():
    import types

    from dann.voice.filters import Filters
    from dann.voice.why import explain
    from lstm.postindex import Post, PostIndex

    common = [Post(str(i), f"to be honest number {i} or so") for i in range(40)]
    index = PostIndex.build([*common, Post("hamlet", "to be or not to be that is the question"),
                             Post("brutus", "good or bad quoth brutus")])
    voice = types.SimpleNamespace(posts=index, version=7)
    found = explain(voice, "to be or not to be my lord brutus", Filters())
    assert (found.longest_run, found.run) == (6, "to be or not to be")
    assert [p["id"] for p in found.posts][:2] == ["hamlet", "brutus"]
    assert found.posts[0]["shared"] == ["to", "be", "or", "not"]
    forgetting = Filters(forget=types.SimpleNamespace(glued=lambda text: "question" if "question" in text else None))
    hidden = explain(voice, "to be or not to be my lord brutus", forgetting)
    assert "hamlet" not in [p["id"] for p in hidden.posts] and hidden.run == ""
