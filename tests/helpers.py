"""Running the `dann` command in process and checking that it failed with one readable line."""

from dann.cli import main
from dann.state import Store


def run_main(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


def read_only(store: Store) -> Store:
    """The same SQLite database, opened read-only, as a read-only volume would give it: reads work,
    every write fails."""
    return Store(f"sqlite:///file:{store.where}?mode=ro&uri=true")
