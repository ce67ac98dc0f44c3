"""👍 and 👎 on dann's messages, counted per model version: kept beside the checkpoints as feedback.json.

Each message dann sends in the voice is remembered with the version that wrote it (the newest
MAX_MESSAGES of them), so a reaction added later, even after a restart, counts for the right
version. Discord allows one reaction of a kind per person and message, so adding and removing
reactions is already one vote a person; a removed reaction takes its vote back.
"""

import json
import logging
from pathlib import Path

from dann.jsonfile import write_json

FILE_NAME = "feedback.json"
MAX_MESSAGES = 10_000
VOTES = {"👍": "up", "👎": "down"}
log = logging.getLogger("dann.discord")
SKIN_TONES = "".join(chr(c) for c in range(0x1F3FB, 0x1F400))


def vote_of(emoji: str) -> str | None:
    """"up", "down" or None for a reaction's emoji, whatever its skin tone."""
    return VOTES.get(emoji.strip(SKIN_TONES + "\ufe0f"))


class Feedback:
    def __init__(self, checkpoint_dir):
        self.path = Path(checkpoint_dir) / FILE_NAME
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = {}  # none yet, or unreadable: counting starts again rather than stopping the bot
        self.messages: dict[str, int] = data.get("messages", {}) if isinstance(data, dict) else {}
        self.votes: dict[str, dict[str, int]] = data.get("votes", {}) if isinstance(data, dict) else {}
        self._warned = False

    def said(self, message_id: int, version: int) -> None:
        """Remember that `message_id` was written by model `version`."""
        self.messages[str(message_id)] = version
        if len(self.messages) > MAX_MESSAGES:  # dicts keep insertion order: the oldest go first
            for old in list(self.messages)[: len(self.messages) - MAX_MESSAGES]:
                del self.messages[old]
        self._save()

    def react(self, message_id: int, emoji: str, change: int) -> bool:
        """Count a reaction added (+1) or removed (-1). False when it is no vote on a message of
        dann's voice."""
        vote, version = vote_of(emoji), self.messages.get(str(message_id))
        if vote is None or version is None:
            return False
        tally = self.votes.setdefault(str(version), {"up": 0, "down": 0})
        tally[vote] = max(0, tally[vote] + change)
        self._save()
        return True

    def of(self, version: int) -> dict[str, int]:
        return dict(self.votes.get(str(version), {"up": 0, "down": 0}))

    def _save(self) -> None:
        try:
            write_json(self.path, {"messages": self.messages, "votes": self.votes})
        except OSError as error:  # a read-only volume: the counts live on in memory until a restart
            if not self._warned:
                log.warning("cannot save reactions to %s (%s); counting in memory only", self.path,
                            error.strerror or error)
                self._warned = True
