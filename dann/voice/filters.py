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

    def glued(self, text: str) -> str | None:
        """"blocked" or "forgotten" when `text` holds a term or phrase anywhere, even glued inside
        a longer word; None otherwise."""
        if self.blocklist is not None and self.blocklist.glued(text):
            return "blocked"
        if self.forget is not None and self.forget.glued(text):
            return "forgotten"
        return None

    def refusal(self, request) -> str | None:
        """Why a request's prompt or context cannot be served, or None. Every answer begins with
        its prompt, so a term the asker typed would come back as dann's own words; a context is
        read back into the reply's prompt the same way."""
        texts = (request.context,) if isinstance(request.context, str) else (request.context or ())
        for field, text in (("prompt", request.prompt), *(("context", t) for t in texts)):
            why = self.glued(text)
            if why == "blocked":
                return f"the {field} holds a blocked term; dann will not say it"
            if why == "forgotten":
                return f"the {field} holds a phrase dann was asked to forget"
        return None

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
