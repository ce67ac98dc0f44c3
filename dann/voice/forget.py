"""The forget list: phrases the owner has taken back, kept in the state store (dann/state/).

From the moment a phrase is added, no generated text containing it is served (the bot, the web
page and `dann sample` check every candidate against the list as the database holds it now: each
process rereads it when its revision moves). At the next training run the trainer drops every
record that contains a phrase, so the new model's copy index no longer holds it, and a changed
list alone is reason to retrain. Adding a phrase also deletes the stored posts holding it from the
post store (dann/state/posts.py).

Matching ignores case, accents, punctuation and whitespace between words, and works on whole
words: "my address is 5 Elm St" is found in "MY address... is 5 elm st!", and "ann" is not found
in "annual".

A forget.json of an older version beside the checkpoints is imported once, then renamed.
"""

import hashlib
import json
import re
import threading
import time
from pathlib import Path

from sqlalchemy import delete, insert, select

from dann.state import Store, failing_as, tables
from dann.state.posts import PostStore
from dann.voice.blocklist import fold
from lstm.errors import DannError

FILE_NAME = "forget.json"
MAX_PHRASE_CHARS = 500
WORD = re.compile(r"\w+")


class ForgetError(DannError):
    """A phrase that cannot be forgotten as given, or a forget list that cannot be read or written."""


def key(text: str) -> str:
    """How phrases and texts are compared: folded words, one space between them, and one at each
    end so that only whole words match."""
    return " " + " ".join(WORD.findall(fold(text))) + " "


class ForgetList:
    def __init__(self, store: Store, checkpoint_dir=None):
        """The list in `store`; a forget.json of an older version in `checkpoint_dir` is imported first."""
        self.store = store
        self._lock = threading.Lock()  # the sampler thread and the event loop both read
        self._seen: int | None = None  # the list's revision as last read
        self._phrases: list[str] = []
        self._keys: list[str] = []
        if checkpoint_dir is not None:
            with failing_as(ForgetError):
                store.import_once(Path(checkpoint_dir) / FILE_NAME, _load_json)

    # --- reading -----------------------------------------------------------------------------

    def phrases(self) -> list[str]:
        """The phrases as the owner gave them, oldest first, as the database holds them now."""
        return list(self._refresh()[0])

    def match(self, text: str) -> str | None:
        """The first forgotten phrase that `text` contains, or None."""
        phrases, keys = self._refresh()
        if not keys:
            return None
        text_key = key(text)
        for phrase, phrase_key in zip(phrases, keys, strict=True):
            if phrase_key in text_key:
                return phrase
        return None

    def glued(self, text: str) -> str | None:
        """The first forgotten phrase in `text` even without the spaces and word ends `match`
        needs ("mysecretplanB" holds "my secret plan"), or None."""
        phrases, keys = self._refresh()
        squeezed = "".join(WORD.findall(fold(text)))
        for phrase, phrase_key in zip(phrases, keys, strict=True):
            if phrase_key.replace(" ", "") in squeezed:
                return phrase
        return None

    def digest(self) -> str:
        """A hash of what is forgotten (order and spelling aside): the trainer retrains when it changes."""
        keys = self._refresh()[1]
        return hashlib.sha256(json.dumps(sorted(set(keys))).encode()).hexdigest()[:16] if keys else ""

    def _refresh(self) -> tuple[list[str], list[str]]:
        """(phrases, keys), reread when another writer has changed them. A list that cannot be read
        raises ForgetError: nothing is served unchecked."""
        with failing_as(ForgetError), self.store.read("read the forget list in") as conn:
            seen = conn.execute(select(tables.revision.c.number)
                                .where(tables.revision.c.name == "forget")).scalar() or 0
            with self._lock:
                if seen != self._seen:
                    rows = conn.execute(select(tables.forget.c.phrase).order_by(tables.forget.c.id)).all()
                    self._phrases = [row.phrase for row in rows]
                    self._keys, self._seen = [key(p) for p in self._phrases], seen
                return self._phrases, self._keys

    # --- changing ----------------------------------------------------------------------------

    def add(self, phrase: str) -> bool:
        """Forget `phrase`. False if it was forgotten already. Raises ForgetError for a phrase that
        is empty or too long, or a list that cannot be written (a read-only volume, say)."""
        phrase = " ".join(phrase.split())
        if key(phrase) == "  ":
            raise ForgetError("give a phrase to forget: it has no letters or digits")
        if len(phrase) > MAX_PHRASE_CHARS:
            raise ForgetError(f"a phrase to forget is at most {MAX_PHRASE_CHARS} characters; this one has "
                              f"{len(phrase)}. Forget its most telling part")
        with failing_as(ForgetError), self.store.write("add to the forget list in") as conn:
            added = _add(conn, phrase)
        # The person's stored posts holding it go too (dann/state/posts.py), not only at the next run.
        phrase_key = key(phrase)
        with failing_as(ForgetError):
            PostStore(self.store).forget(lambda text: phrase_key in key(text))
        return added

    def remove(self, phrase: str) -> bool:
        """Stop forgetting `phrase` (matched as texts are). False if it was not on the list."""
        with failing_as(ForgetError), self.store.write("remove from the forget list in") as conn:
            gone = conn.execute(delete(tables.forget).where(tables.forget.c.key == key(phrase))).rowcount
            if gone:
                Store.bump(conn, "forget")
            return bool(gone)


def forget_list(settings) -> ForgetList:
    """The forget list of these settings' store (importing a forget.json beside their checkpoints)."""
    from dann.state import open_store

    with failing_as(ForgetError):
        return ForgetList(open_store(settings), settings.checkpoint_dir)


def _add(conn, phrase: str) -> bool:
    # Inside one write transaction: a second process adding at the same moment waits for this one.
    if conn.execute(select(tables.forget.c.id).where(tables.forget.c.key == key(phrase))).first() is not None:
        return False
    conn.execute(insert(tables.forget).values(key=key(phrase), phrase=phrase, added_at=time.time()))
    Store.bump(conn, "forget")
    return True


def _load_json(conn, data) -> None:
    """forget.json of older versions: {"phrases": [text, ...]}."""
    phrases = data["phrases"]
    if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
        raise ValueError('expected {"phrases": [text, ...]}')
    for phrase in phrases:
        if key(phrase) != "  ":
            _add(conn, " ".join(phrase.split()))
