"""The forget list: phrases the owner has taken back. Kept beside the checkpoints as forget.json.

From the moment a phrase is added, no generated text containing it is served (the bot, the web
page and `dann sample` check every candidate against the list as it is on disk now: each process
rereads the file when it changes). At the next training run the trainer drops every record that
contains a phrase, so the new model's copy index no longer holds it, and a changed list alone is
reason to retrain.

Matching ignores case, accents, punctuation and whitespace between words, and works on whole
words: "my address is 5 Elm St" is found in "MY address... is 5 elm st!", and "ann" is not found
in "annual".

The file is replaced atomically (dann/jsonfile.py), so a reader never sees half of it.
"""

import hashlib
import json
import re
import threading
from pathlib import Path

from dann.jsonfile import write_json
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
    def __init__(self, checkpoint_dir):
        self.path = Path(checkpoint_dir) / FILE_NAME
        self._lock = threading.Lock()  # the bot adds from the event loop while the sampler thread reads
        self._seen: tuple | None = None  # (mtime_ns, size) of the file as last read
        self._phrases: list[str] = []
        self._keys: list[str] = []

    # --- reading -----------------------------------------------------------------------------

    def phrases(self) -> list[str]:
        """The phrases as the owner gave them, oldest first, as the file holds them now."""
        self._refresh()
        return list(self._phrases)

    def match(self, text: str) -> str | None:
        """The first forgotten phrase that `text` contains, or None."""
        self._refresh()
        if not self._keys:
            return None
        text_key = key(text)
        for phrase, phrase_key in zip(self._phrases, self._keys, strict=True):
            if phrase_key in text_key:
                return phrase
        return None

    def digest(self) -> str:
        """A hash of what is forgotten (order and spelling aside): the trainer retrains when it changes."""
        self._refresh()
        return hashlib.sha256(json.dumps(sorted(set(self._keys))).encode()).hexdigest()[:16] if self._keys else ""

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._set([], None)
            return
        except OSError as error:
            raise ForgetError(f"cannot read the forget list {self.path}: {error.strerror or error}") from None
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._set(self._read(), seen)

    def _read(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ForgetError(f"the forget list {self.path} cannot be read ({error}); fix or remove it") from None
        phrases = data.get("phrases") if isinstance(data, dict) else None
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise ForgetError(f"the forget list {self.path} is damaged: expected {{\"phrases\": [text, ...]}}")
        return phrases

    def _set(self, phrases: list[str], seen) -> None:
        self._phrases, self._keys, self._seen = phrases, [key(p) for p in phrases], seen

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
        with self._lock:
            phrases = self._read()
            if key(phrase) in map(key, phrases):
                return False
            self._write([*phrases, phrase])
            return True

    def remove(self, phrase: str) -> bool:
        """Stop forgetting `phrase` (matched as texts are). False if it was not on the list."""
        with self._lock:
            phrases = self._read()
            kept = [p for p in phrases if key(p) != key(phrase)]
            if len(kept) == len(phrases):
                return False
            self._write(kept)
            return True

    def _write(self, phrases: list[str]) -> None:
        try:
            write_json(self.path, {"phrases": phrases})
        except OSError as error:
            raise ForgetError(f"cannot write the forget list {self.path}: {error.strerror or error}") from None
        self._seen = None  # reread on next use
