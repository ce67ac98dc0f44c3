"""The JSON inside an export, and its fields read with the type each parser needs.

A damaged or hostile export can put anything anywhere: a number where text belongs, a list where an
object does, null, true, NaN, a number with thousands of digits, arrays nested ten thousand deep.
Each parser reads the fields it uses through these functions, so a wrong type is one CorpusError
naming the file, the item and the field ("data/tweets.js: item 3: full_text is a number, not text")
rather than a traceback from deep inside the cleaning.
"""

import json
import sys
from datetime import datetime

from trainer.corpus import CorpusError, utc_iso


def parse_json(text: str, where: str):
    try:
        return json.loads(text)  # Python ints keep 19-digit snowflake ids exact
    except json.JSONDecodeError as error:
        raise CorpusError(f"{where}: broken JSON at line {error.lineno} column {error.colno} ({error.msg})") from None
    except RecursionError:
        raise CorpusError(f"{where}: JSON nested too deeply to be an export") from None
    except ValueError:  # not a JSONDecodeError: Python refuses an int of more digits than this
        raise CorpusError(f"{where}: holds a number of over {sys.get_int_max_str_digits()} digits; "
                          f"not an export") from None


def numbered(items: list, where: str, noun: str = "item") -> list[tuple[str, object]]:
    """Each item with how a message names it: "data/tweets.js: item 3" (counting from 1)."""
    return [(f"{where}: {noun} {n}", item) for n, item in enumerate(items, 1)]


def kind(value) -> str:
    """What a JSON value is, in the words of an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def text_field(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise CorpusError(f"{where}: {key} is {kind(value)}, not text")


def id_field(obj: dict, key: str, where: str) -> str | None:
    """An id, given as text or as a whole number (Discord's snowflakes), as text."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise CorpusError(f"{where}: {key} is {kind(value)}, not an id")


def object_field(obj: dict, key: str, where: str) -> dict:
    """An object, or {} when it is missing or null."""
    value = obj.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise CorpusError(f"{where}: {key} is {kind(value)}, not an object")


def list_field(obj: dict, key: str, where: str) -> list:
    """A list, or [] when it is missing or null."""
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise CorpusError(f"{where}: {key} is {kind(value)}, not a list")


def objects_field(obj: dict, key: str, where: str) -> list[dict]:
    """A list of objects, or [] when it is missing or null."""
    values = list_field(obj, key, where)
    for value in values:
        if not isinstance(value, dict):
            raise CorpusError(f"{where}: {key} holds {kind(value)}, not only objects")
    return values


def parse_time(value: str | None, where: str, layouts: tuple[str, ...] = ()) -> str | None:
    """A time as UTC ISO: in one of the strptime `layouts`, or ISO-8601. A time in no layout is None
    (an odd time is not worth losing the post; it keeps its place in the file); one that cannot be
    a real moment (year 9999 at -05:00 is past the end of the calendar in UTC) is refused."""
    if not value:
        return None
    for layout in layouts:
        try:
            moment = datetime.strptime(value, layout)
            break
        except ValueError:
            pass
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    try:
        return utc_iso(moment)
    except OverflowError:
        raise CorpusError(f"{where}: the time {value[:40]!r} is out of range") from None
