"""What the poster has done, kept beside the checkpoints as poster.json, so that a restart never
posts a slot twice nor answers a mention twice:

    {"<destination>": {"since": t, "slot": k, "cursor": "…", "answered": ["id", …]}}

`since` is the grid's origin (the first start), `slot` the last grid point posted (or skipped in
quiet hours), `cursor` the platform's position in its mentions, `answered` the newest mention ids
answered or passed over. The file is replaced atomically on every change (dann/jsonfile.py). A
dry run keeps its record in memory only.
"""

import json
from pathlib import Path

from dann.jsonfile import write_json
from dann.poster.destination import PosterError

FILE_NAME = "poster.json"
KEEP_ANSWERED = 5000  # ids kept per destination: far more than one poll's mentions can bring


class PosterRecord:
    def __init__(self, checkpoint_dir, *, persist: bool = True):
        self.path = Path(checkpoint_dir) / FILE_NAME
        self.persist = persist
        self.data: dict[str, dict] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PosterError(f"cannot read {self.path} ({error}); fix or remove it (it says what was posted "
                              "and answered, so that nothing is posted or answered twice)") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise PosterError(f"{self.path} is damaged; fix or remove it")
        self.data = data

    def of(self, destination: str) -> dict:
        return self.data.setdefault(destination, {"since": None, "slot": None, "cursor": None, "answered": []})

    def change(self, destination: str, **fields) -> None:
        entry = self.of(destination)
        entry.update(fields)
        entry["answered"] = entry["answered"][-KEEP_ANSWERED:]
        if self.persist:
            try:
                write_json(self.path, self.data)
            except OSError as error:
                raise PosterError(f"cannot write {self.path}: {error.strerror or error}") from None

    def answered(self, destination: str, mention_id: str) -> bool:
        return mention_id in self.of(destination)["answered"]

    def mark_answered(self, destination: str, mention_id: str) -> None:
        if not self.answered(destination, mention_id):
            self.change(destination, answered=[*self.of(destination)["answered"], mention_id])

    def unmark_answered(self, destination: str, mention_id: str) -> None:
        self.change(destination, answered=[i for i in self.of(destination)["answered"] if i != mention_id])
