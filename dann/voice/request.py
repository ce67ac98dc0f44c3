"""The one request type: what to generate, as `dann sample`, `dann eval`, the bot and the web page ask."""

import dataclasses

from lstm.errors import DannError

MODES = ("post", "reply")
MAX_TEMPERATURE = 5.0  # above about 1 it is noise already; 0 is greedy


class RequestError(DannError):
    """A request that cannot be served as asked (a mode that does not exist, a bad setting)."""


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    mode: str = "post"  # "post" or "reply": which kind of text the model writes
    prompt: str = ""  # the start of the text; every answer begins with it
    # Text fed before, as the post being answered (a mention, the web's "reply to"), or a tuple of
    # texts oldest first: the conversation a reply answers (a Discord reply chain).
    context: str | tuple[str, ...] | None = None
    temperature: float = 0.7
    n: int = 1  # texts wanted; each is the best of the server's best-of-n candidates
    seed: int | None = None  # text i is seeded seed + i; None: the service picks one
    max_chars: int | None = None  # at most this many new characters; None: the server's cap
    top_k: int = 0  # keep the k likeliest characters (0: off)
    top_p: float = 1.0  # nucleus sampling mass (1.0: off)

    def __post_init__(self):
        if self.mode not in MODES:
            raise RequestError(f"mode must be 'post' or 'reply', not {self.mode!r}")
        if isinstance(self.context, list):  # a list would read as one context per row further down
            object.__setattr__(self, "context", tuple(self.context))
        if not (self.context is None or isinstance(self.context, str)
                or all(isinstance(text, str) for text in self.context)):
            raise RequestError("context must be a text or a list of texts")
        if not (isinstance(self.n, int) and self.n >= 1):
            raise RequestError(f"n must be at least 1, not {self.n}")
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            raise RequestError(f"temperature must be between 0 and {MAX_TEMPERATURE:g} (0 is greedy), "
                               f"not {self.temperature:g}")
        if self.max_chars is not None and self.max_chars < 1:
            raise RequestError(f"max_chars must be at least 1, not {self.max_chars}")
        if self.top_k < 0:
            raise RequestError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p:g}")
