"""What may never be served besides copies: blocked terms and forgotten phrases.

Best-of-n (bestof.py) rejects a candidate that copies the corpus (the voice's copy index) or that
these filters refuse, and never serves one. The bot, the web page and `dann sample` build theirs
from the settings with `filters_for`; the forget list is the state store's.
"""

import dataclasses

from dann.voice.blocklist import Blocklist
from dann.voice.forget import ForgetList, forget_list


@dataclasses.dataclass(frozen=True)
class Filters:
    blocklist: Blocklist | None = None
    forget: ForgetList | None = None

    def verdict(self, text: str) -> str | None:
        """"blocked", "forgotten", or None when `text` may be served."""
        if self.blocklist is not None and self.blocklist.match(text):
            return "blocked"
        if self.forget is not None and self.forget.match(text):
            return "forgotten"
        return None


def blocklist_for(settings) -> Blocklist | None:
    """The default list (unless DANN_BLOCKLIST=off) and the owner's file (DANN_BLOCKLIST_FILE)."""
    blocklist = Blocklist.default() if settings.blocklist == "on" else None
    if settings.blocklist_file is not None:
        own = Blocklist.from_file(settings.blocklist_file)
        blocklist = own if blocklist is None else blocklist | own
    return blocklist


def filters_for(settings) -> Filters:
    """The filters for these settings, with the forget list of their state store. Raises
    BlocklistError for a blocklist file that cannot be used, ForgetError for a store that cannot be opened."""
    return Filters(blocklist_for(settings), forget_list(settings))
