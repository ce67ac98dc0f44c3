"""The post index behind "why did you say that?": nearest posts by rare words, longest shared run."""

import numpy as np

from lstm import checkpoint
from lstm.postindex import Post, PostIndex

POSTS = [Post("1", "the cat sat on the mat"), Post("2", "a dog barked at the moon tonight", val=True),
         Post("3", "cats and dogs living together"), Post("4", "the moon is bright tonight"),
         Post("5", "Lunch was great, the soup especially"), Post("6", "the soup is cold again")]


def test_nearest_ranks_by_shared_rare_words_and_explains_them():
    index = PostIndex.build(POSTS)
    found = index.nearest("the moon tonight was bright", k=2)
    assert [m.post.id for m in found] == ["4", "2"]  # three rare words shared, then two
    assert set(found[0].shared) == {"moon", "tonight", "bright"} and "the" not in found[0].shared
    assert index.nearest("completely unrelated words") == []
    assert [m.post.id for m in index.nearest("the moon tonight", allow=lambda text: "bright" not in text)] == ["2"]


def test_character_grams_break_ties_between_posts_sharing_the_same_rare_word():
    index = PostIndex.build(POSTS)
    # "soup" is in posts 5 and 6; the rest of the text is spelt like post 6 ("is cold").
    assert index.nearest("my soup is cold", k=1)[0].post.id == "6"
    assert index.nearest("the soup especially great", k=1)[0].post.id == "5"


def test_longest_run_finds_the_longest_span_of_words_in_one_post_and_never_across_two():
    index = PostIndex.build(POSTS)
    run = index.longest_run("I heard a dog barked at the cat")
    assert (run.words, run.text, run.post.id) == (5, "a dog barked at the", "2")
    # "tonight" ends post 2 and "cats" starts post 3: neighbours in the index, never one run.
    across = index.longest_run("tonight cats")
    assert across.words == 1
    assert index.longest_run("nothing here matches").words == 0
    assert index.longest_run("").post is None


def test_showable_holds_the_validation_posts_that_fit():
    index = PostIndex.build(POSTS)
    assert index.showable(280) == ["a dog barked at the moon tonight"]
    assert index.showable(10) == []


def test_saved_with_a_checkpoint_and_loaded_back(tmp_path, trained_dir):
    served = checkpoint.load_latest(trained_dir)
    index = PostIndex.build(POSTS)
    checkpoint.save(tmp_path, 1, served.model, served.vocab, served.info, posts=index)
    loaded = checkpoint.load_latest(tmp_path).posts
    assert loaded.posts == index.posts
    for name in ("tokens", "starts", "order", "bounds", "df"):
        assert np.array_equal(getattr(loaded, name), getattr(index, name)), name
    assert [m.post for m in loaded.nearest("moon tonight")] == [m.post for m in index.nearest("moon tonight")]
    # No posts at all: nothing saved (orbax refuses empty arrays), so the version answers neither.
    checkpoint.save(tmp_path, 2, served.model, served.vocab, served.info, posts=PostIndex.build([]))
    assert checkpoint.load_latest(tmp_path).posts is None
