"""The one family of expected failures.

Bad input, a missing model, a run that cannot go on: each is a `DannError` (or a subclass) whose
message is one sentence for the person. Every edge (the CLI, the trainer's schedule, the bot, the
web API) shows these as one line. Anything else, a `ValueError` from inside numpy or jax included,
is a bug and keeps its traceback.

It lives in the model package because it is the lowest layer every other package imports.
"""


class DannError(Exception):
    """An expected failure, shown as one line.

    `public`, where set, is what a stranger is told instead (the web page, a Discord channel): the
    message itself may name server paths, which only the log and the operator should see."""

    public: str | None = None

    def for_public(self) -> str:
        return self.public or str(self)
