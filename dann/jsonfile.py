"""A small JSON file beside the checkpoints that a front end writes and other processes read (the
forget list, the bot's pause state): replaced atomically, so no reader ever sees half of it."""

import json
import os
import tempfile
from pathlib import Path


def write_json(path: Path, data) -> None:
    """Write `data` to a temporary file in the same folder, flush it to disk, then rename it over
    `path`. Raises OSError as the file system does (read-only, full, no permission)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
