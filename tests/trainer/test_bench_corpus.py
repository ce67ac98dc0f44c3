"""`dann bench x-archive`: the archive it writes is one the X reader takes, the same every time,
and with --drift its newest posts come from the last source."""

from trainer.bench_corpus import write_archive
from trainer.exports import read_corpus


def sources(tmp_path):
    first, last = tmp_path / "first.txt", tmp_path / "last.txt"
    first.write_text("".join(f"alpha line number {n} of the first source\n" for n in range(600)))
    last.write_text("".join(f"omega line number {n} of the last source\n" for n in range(600)))
    return [first, last]


def share_of_last(records) -> float:
    return sum("omega" in r.text.lower() for r in records) / len(records)


def newest_and_oldest(out):
    records = sorted(read_corpus(out).records, key=lambda r: r.created_at)
    fifth = len(records) // 5
    return records[:fifth], records[-fifth:]


def test_drift_moves_the_mix_from_the_first_source_to_the_last(tmp_path):
    write_archive(tmp_path / "drift", sources(tmp_path), posts=400, seed=1, drift=True)
    oldest, newest = newest_and_oldest(tmp_path / "drift")
    assert share_of_last(oldest) < 0.05 and share_of_last(newest) > 0.95

    write_archive(tmp_path / "mixed", sources(tmp_path), posts=400, seed=1)
    oldest, newest = newest_and_oldest(tmp_path / "mixed")
    assert 0.3 < share_of_last(oldest) < 0.7 and 0.3 < share_of_last(newest) < 0.7


def test_the_same_sources_and_seed_give_the_same_archive(tmp_path):
    for name in ("a", "b"):
        write_archive(tmp_path / name, sources(tmp_path), posts=100, seed=3, drift=True)
    assert (tmp_path / "a/data/tweets.js").read_bytes() == (tmp_path / "b/data/tweets.js").read_bytes()
