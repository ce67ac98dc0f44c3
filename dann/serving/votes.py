""""Real or dann?": the votes of the web page's game, counted per model version.

A visitor sees one of the person's real posts beside one dann wrote and picks the one they think
is real; dann "fools" them when they pick its post. The fool rate is a share of votes, so it comes
with a 95 % Wilson score interval: with 20 votes, 30 % fooled means anything from 15 % to 52 %.
50 % is the most a generator can score against readers who cannot tell at all.

The web page writes the counts (web/game.py) to one JSON file (DANN_GAME_FILE, by default
game.json beside the checkpoints); `dann status` and `/dann status` read it.
"""

import json
import math
import threading
from pathlib import Path

from dann.jsonfile import write_json

FILE_NAME = "game.json"
Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


def wilson(fooled: int, votes: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the share fooled/votes (0 to 1 when there are no votes)."""
    if votes == 0:
        return 0.0, 1.0
    p = fooled / votes
    centre = (p + z * z / (2 * votes)) / (1 + z * z / votes)
    half = z * math.sqrt(p * (1 - p) / votes + z * z / (4 * votes * votes)) / (1 + z * z / votes)
    return max(0.0, centre - half), min(1.0, centre + half)


def game_file(settings) -> Path:
    return Path(settings.game_file) if settings.game_file else Path(settings.checkpoint_dir) / FILE_NAME


def shown_tally(settings, votes: "Votes", version: int) -> dict | None:
    """The tally `dann status` and `/dann status` show: None where the game has never run."""
    return votes.of(version) if settings.web_game or votes.path.is_file() else None


class Votes:
    """{"versions": {"7": {"votes": 40, "fooled": 13}}} in `path`. One writer (the web page);
    every reader rereads the file, so a vote shows in `dann status` at once."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}  # no votes yet, or unreadable: counting starts again rather than stopping a server
        versions = data.get("versions") if isinstance(data, dict) else None
        return versions if isinstance(versions, dict) else {}

    def add(self, version: int, fooled: bool) -> dict:
        """Count one vote on `version`'s post and return the version's tally."""
        with self._lock:
            versions = self._read()
            counts = versions.setdefault(str(version), {"votes": 0, "fooled": 0})
            counts["votes"] += 1
            counts["fooled"] += bool(fooled)
            write_json(self.path, {"versions": versions})
        return tally(counts)

    def of(self, version: int | None) -> dict:
        counts = self._read().get(str(version), {})
        return tally({"votes": int(counts.get("votes", 0)), "fooled": int(counts.get("fooled", 0))})


def tally(counts: dict) -> dict:
    votes, fooled = counts["votes"], counts["fooled"]
    low, high = wilson(fooled, votes)
    return {"votes": votes, "fooled": fooled, "fool_rate": round(fooled / votes, 4) if votes else None,
            "low": round(low, 4), "high": round(high, 4)}


def render(result: dict) -> str:
    """One sentence for `dann status` and `/dann status`."""
    if not result["votes"]:
        return "Real or dann?: no votes on this version yet."
    return (f"Real or dann?: it fooled {result['fooled']} of {result['votes']} votes on this version "
            f"({result['fool_rate']:.0%}, 95% interval {result['low']:.0%} to {result['high']:.0%}; "
            f"50% is as good as real).")
