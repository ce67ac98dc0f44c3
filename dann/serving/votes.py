""""Real or dann?": the votes of the web page's game, counted per model version.

A visitor sees one of the person's real posts beside one dann wrote and picks the one they think
is real; dann "fools" them when they pick its post. The fool rate is a share of votes, so it comes
with a 95 % Wilson score interval: with 20 votes, 30 % fooled means anything from 15 % to 52 %.
50 % is the most a generator can score against readers who cannot tell at all.

The web page counts the votes (web/game.py) in the state store (dann/state/); `dann status` and
`/dann status` read them there. A game file of an older version (DANN_GAME_FILE, or game.json
beside the checkpoints) is imported once, then renamed.
"""

import logging
import math
from pathlib import Path

from sqlalchemy import select, update

from dann.state import StateError, Store, insert_missing, tables, upsert

FILE_NAME = "game.json"
log = logging.getLogger("dann.web")
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
    """Where older versions kept the votes: imported from there once."""
    return Path(settings.game_file) if settings.game_file else Path(settings.checkpoint_dir) / FILE_NAME


def shown_tally(settings, votes: "Votes", version: int) -> dict | None:
    """The tally `dann status` and `/dann status` show: None where the game has never run."""
    return votes.of(version) if settings.web_game or votes.any() else None


class Votes:
    """Votes per model version. The web page writes them; every reader sees a vote at once."""

    def __init__(self, store: Store, old_file: Path | None = None):
        self.store = store
        if old_file is not None:
            try:
                store.import_once(old_file, _load_json)
            except StateError as error:  # the game goes on; the old counts wait until the file is fixed
                log.error("%s", error)

    def add(self, version: int, fooled: bool) -> dict:
        """Count one vote on `version`'s post and return the version's tally. Raises StateError."""
        votes = tables.game_votes
        with self.store.write("count a vote in") as conn:
            insert_missing(conn, votes, {"version": version, "votes": 0, "fooled": 0})
            conn.execute(update(votes).where(votes.c.version == version)
                         .values(votes=votes.c.votes + 1, fooled=votes.c.fooled + int(bool(fooled))))
            row = conn.execute(select(votes).where(votes.c.version == version)).one()
        return tally({"votes": row.votes, "fooled": row.fooled})

    def of(self, version: int | None) -> dict:
        """The version's tally; no votes where the store cannot be read (a status line is no reason to stop)."""
        try:
            with self.store.read("read the game's votes from") as conn:
                row = conn.execute(select(tables.game_votes).where(tables.game_votes.c.version == version)).first()
        except StateError as error:
            log.error("%s", error)
            row = None
        return tally({"votes": row.votes if row else 0, "fooled": row.fooled if row else 0})

    def any(self) -> bool:
        """Whether any vote was ever counted."""
        try:
            with self.store.read("read the game's votes from") as conn:
                return conn.execute(select(tables.game_votes.c.version).limit(1)).first() is not None
        except StateError:
            return False


def _load_json(conn, data) -> None:
    """game.json of older versions: {"versions": {"7": {"votes": 40, "fooled": 13}}}."""
    for version, counts in data["versions"].items():
        upsert(conn, tables.game_votes, {"version": int(version), "votes": int(counts["votes"]),
                                         "fooled": int(counts["fooled"])})


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
