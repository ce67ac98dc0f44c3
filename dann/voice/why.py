""""Why did you say that?": the real posts a text is closest to, and how new it is.

Every published version carries the posts that may be shown to anyone and their word index
(lstm/postindex.py), built by the trainer from the export without private messages, forgotten
posts or posts with a blocked term. The forget list and the blocklist can grow after a version is
published, so each post found is checked again against today's filters before it is shown.

The bot's context menu, the web page's "why?" and `dann why` all answer with `explain`.
"""

import dataclasses

from dann.voice.bestof import Voice
from dann.voice.filters import Filters
from lstm.errors import DannError

MAX_TEXT = 2000  # characters looked at: more than any text dann serves
NEAREST = 3
RUN_FIRST = 3  # a run of this many words puts its post first among the closest


class NoPostIndex(DannError):
    """The served version was published without its posts, so it cannot say where its words came from."""


@dataclasses.dataclass(frozen=True)
class Explanation:
    text: str
    posts: list[dict]  # {"id", "text", "shared"}: the closest real posts, best first
    longest_run: int  # the most consecutive words the text shares with any one post
    run: str  # those words (empty when the run's post may no longer be shown)
    model_version: int | None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One plain sentence about how new the text is."""
        if not self.longest_run:
            return "None of its words appear in any of the posts dann learned from."
        words = "word" if self.longest_run == 1 else "words"
        shared = f' ("{self.run}")' if self.run else ""
        return (f"New text: the longest run of words it shares with any one post is {self.longest_run} {words}"
                f"{shared}.")


def explain(voice: Voice, text: str, filters: Filters | None, k: int = NEAREST) -> Explanation:
    """The `k` real posts closest to `text` that may be shown today, and its longest shared run."""
    if voice.posts is None:
        raise NoPostIndex(f"model version {voice.version} was published without its posts, so it cannot say "
                          "where its words came from: the next training run publishes a version that can")
    text = text[:MAX_TEXT]

    def allowed(post: str) -> bool:
        return filters is None or filters.glued(post) is None  # glued: anywhere, even inside a word

    matches = voice.posts.nearest(text, k, allow=allowed)
    run = voice.posts.longest_run(text)
    shown_run = run.text if run.post is not None and allowed(run.post.text) else ""
    posts = [{"id": m.post.id, "text": m.post.text, "shared": m.shared[:8]} for m in matches]
    if shown_run and run.words >= RUN_FIRST:
        # The post a run of words came from is the closest there is, rare words or not.
        posts = [{"id": run.post.id, "text": run.post.text, "shared": list(dict.fromkeys(run.text.split()))[:8]},
                 *[p for p in posts if (p["id"], p["text"]) != (run.post.id, run.post.text)]][:k]
    return Explanation(text, posts, run.words, shown_run, voice.version)
