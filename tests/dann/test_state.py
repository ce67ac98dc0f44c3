"""The state store: one database that several processes write at once, opened in one line or refused in one."""

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import update

from dann.state import StateError, Store, tables
from dann.voice.forget import ForgetList

WRITER = textwrap.dedent("""
    import sys
    from dann.state import Store
    from dann.voice.forget import ForgetList
    forget = ForgetList(Store(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.readline()  # both start writing together
    for i in range(40):
        assert forget.add(f"{sys.argv[2]} phrase {i}")
""")


def test_two_processes_writing_the_forget_list_at_once_lose_nothing(state_url):
    url = state_url
    Store(url)  # the schema first, as the bot's start creates it
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for name in ("bot", "cli")]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    phrases = ForgetList(Store(url)).phrases()
    assert len(phrases) == 80 and {f"{name} phrase {i}" for name in ("bot", "cli") for i in range(40)} == set(phrases)


def test_a_database_written_by_a_newer_version_is_refused_in_one_line(state_url):
    url = state_url
    store = Store(url)
    with store.write() as conn:
        conn.execute(update(tables.schema).values(version=tables.SCHEMA_VERSION + 1))
    with pytest.raises(StateError, match=r"written by a newer dann .*: upgrade dann$"):
        Store(url)


@pytest.mark.parametrize("url, problem", [
    ("not a url", "is not a database URL"),
    ("sqlite:////sys/dann/state.db", "cannot create the folder of the state database /sys/dann/state.db"),
    ("sqlite:////sys/state.db", "cannot open the state database /sys/state.db: unable to open database file"),
])
def test_a_database_that_cannot_be_opened_is_one_line(url, problem):
    with pytest.raises(StateError, match=problem) as caught:
        Store(url)
    assert "\n" not in str(caught.value)


def test_a_pause_set_through_one_connection_holds_for_another(state_url):
    """As the bot on one host pauses and the poster on another reads it: one database between them."""
    from dann.state.pause import Control

    bot, poster = Control(Store(state_url)), Control(Store(state_url))
    assert poster.pause_of(None) is None
    bot.pause(None, 30)
    assert poster.pause_of(None) is not None
    assert poster.resume(None) and bot.pause_of(None) is None
