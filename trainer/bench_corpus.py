"""A realistic-size X archive built from public-domain text, for measuring voice fidelity.

Real exports cannot ship with dann, and a play is not a timeline. This writes an archive in the
current X layout (`data/tweets.js`, `data/account.js`) whose posts are short public-domain texts
dressed the way a person posts: a speech or a verse cut to a tweet, some lowercased with the last
full stop dropped, some with an emoji, a hashtag or a link, replies with their "@name" prefix
and `display_text_range`, and retweets ("RT @name: …", cut at 140 characters) that the X parser
must leave out. Dates rise through the archive, so the trainer's validation split (the newest
posts) is drawn from the same mix as the rest; with `drift` the mix moves from the first source to
the last as time passes, as a person's interests do, and the newest posts are mostly the last
source's (the corpus the recency weighting is measured on, docs/learning.md).

Sources are plain-text files:
- a play in the layout of trainer/corpora/shakespeare.txt (a speaker line, then the speech, then a
  blank line): a short speech that follows another becomes a reply to the speaker before;
- anything else, one or two lines per text, with a leading verse reference dropped: "Prv1:1 " as
  `bible -f` (Debian's bible-kjv) prints the King James Version, or "Genesis 1:1: " as `diatheke -f
  plain` (Debian's diatheke and sword-text-web) prints the World English Bible.

The same sources and seed always give the same archive (docs/fidelity.md has the command).
"""

import json
import random
import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lstm.errors import DannError

SHAKESPEARE = Path(__file__).parent / "corpora" / "shakespeare.txt"  # seven plays, shipped as package data
SPEAKER = re.compile(r"^[A-Z][A-Za-z .'-]{0,30}\.$")  # "MENENIUS.", "First Citizen.", "Glou."
# "Prv1:1 " as `bible -f` prints a verse, "1 Kings 2:3: " as SWORD's `diatheke -f plain` does
REFERENCE = re.compile(r"^(?:[1-3]?\s?[A-Z][A-Za-z]*(?: [a-zA-Z]+){0,3}\s)?\S*\d+:\d+:?\s+")
EMOJI = ("😂", "🙏", "❤️", "😭", "🔥", "✨", "👀", "😅", "🙄", "💀", "🥲", "👏", "😤", "🤔", "☕")
TAGS = ("#tbt", "#mood", "#poetry", "#MondayMotivation", "#amwriting", "#theatre", "#wisdom")
DOMAINS = ("youtube.com", "nytimes.com", "theguardian.com", "github.com", "substack.com", "bbc.co.uk",
           "instagram.com", "open.spotify.com", "en.wikipedia.org", "gutenberg.org")
FRIENDS = ("sam", "rosalind_k", "mercutio99", "theo_writes", "ada", "nell", "jb_morris", "kit")
MAX_CHARS = 280


def speeches(text: str) -> list[tuple[str, list[str]]]:
    """(speaker, lines) for each speech of a play; stage directions in brackets are left out."""
    found = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if len(lines) >= 2 and SPEAKER.match(lines[0]):
            spoken = [line for line in lines[1:] if not line.startswith("[")]
            if spoken:
                found.append((lines[0].rstrip("."), spoken))
    return found


def play_texts(text: str, rng: random.Random) -> list[tuple[str, str | None]]:
    """(text, replied-to speaker or None): one to three lines of each speech, whole when short."""
    out, before = [], None
    for speaker, lines in speeches(text):
        start = rng.randrange(len(lines)) if len(lines) > 3 else 0
        piece = " ".join(lines[start:start + rng.choice((2, 3, 3, 4, 5))])
        short = len(lines) <= 2
        out.append((piece, before if short and before and rng.random() < 0.6 else None))
        before = speaker
    return out


def line_texts(text: str, rng: random.Random) -> list[tuple[str, None]]:
    """One or two consecutive lines per text."""
    lines = [REFERENCE.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    out, i = [], 0
    while i < len(lines):
        take = rng.choice((1, 1, 2))
        out.append((" ".join(lines[i:i + take]), None))
        i += take
    return out


def dress(text: str, rng: random.Random) -> tuple[str, list[dict]]:
    """The text as posted, and its t.co link entities."""
    text = text[:MAX_CHARS - 30].rsplit(" ", 1)[0] if len(text) > MAX_CHARS - 30 else text
    if rng.random() < 0.3:
        text = text.lower().rstrip(".;:,")
    if rng.random() < 0.15:
        text += " " + rng.choice(EMOJI) * rng.choice((1, 1, 2, 3))
    if rng.random() < 0.05:
        text += " " + rng.choice(TAGS)
    urls = []
    if rng.random() < 0.08:
        short = f"https://t.co/{rng.getrandbits(40):010x}"
        start = len(text) + 1
        text += " " + short
        urls.append({"url": short, "expanded_url": f"https://{rng.choice(DOMAINS)}/{rng.getrandbits(24):x}",
                     "display_url": "…", "indices": [str(start), str(start + len(short))]})
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), urls


def build(sources: list[Path], out: Path, *, posts: int = 5700, seed: int = 0, handle: str = "pd_voice",
          drift: bool = False) -> dict:
    """Write the archive under `out` (a new directory) and return what it holds."""
    rng = random.Random(seed)
    pool = []
    for number, source in enumerate(sources):
        text = source.read_text(encoding="utf-8")
        pool += [(number, *t) for t in (play_texts(text, rng) if len(speeches(text)) > 50 else line_texts(text, rng))]
    rng.shuffle(pool)
    pool = pool[:posts]
    if drift:
        # Each text's place in time is its source's number plus noise wider than one source, so
        # neighbouring sources overlap and the change is gradual rather than a cut.
        pool.sort(key=lambda item: item[0] + 1.5 * rng.random())
    pool = [(text, replied) for _, text, replied in pool]
    start = datetime(2019, 1, 1, tzinfo=UTC)
    tweets, counts = [], {"posts": 0, "replies": 0, "retweets": 0, "links": 0, "chars": 0}
    for n, (text, replied) in enumerate(pool):
        when = start + timedelta(minutes=n * 311 + rng.randrange(300))
        tweet = {"id_str": str(1_100_000_000_000_000_000 + n), "created_at": when.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                 "favorite_count": str(rng.randrange(40)), "retweet_count": "0", "retweeted": False,
                 "lang": "en", "truncated": False, "favorited": False,
                 "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
                 "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}}
        if rng.random() < 0.06:
            friend = rng.choice(FRIENDS)
            full = f"RT @{friend}: {text}"
            tweet["full_text"] = full if len(full) <= 140 else full[:139] + "…"
            tweet["display_text_range"] = ["0", str(len(tweet["full_text"]))]
            counts["retweets"] += 1
        else:
            body, urls = dress(text, rng)
            tweet["entities"]["urls"] = urls
            counts["links"] += bool(urls)
            if replied or rng.random() < 0.1:
                name = re.sub(r"\W+", "_", (replied or rng.choice(FRIENDS)).lower()).strip("_")[:15]
                prefix = f"@{name} "
                tweet.update(in_reply_to_status_id_str=str(1_000_000_000_000_000_000 + n),
                             in_reply_to_screen_name=name, in_reply_to_user_id_str=str(4000 + len(name)))
                tweet["entities"]["user_mentions"] = [{"screen_name": name, "indices": ["0", str(len(prefix) - 1)]}]
                body = prefix + body
                counts["replies"] += 1
            else:
                counts["posts"] += 1
                prefix = ""
            tweet["full_text"] = body
            tweet["display_text_range"] = [str(len(prefix)), str(len(body))]
            counts["chars"] += len(body) - len(prefix)
        tweets.append({"tweet": tweet})
    data = out / "data"
    data.mkdir(parents=True)
    (data / "tweets.js").write_text("window.YTD.tweets.part0 = " + json.dumps(tweets, ensure_ascii=False, indent=1),
                                    encoding="utf-8")
    account = [{"account": {"username": handle, "accountId": "4242", "accountDisplayName": "PD Voice"}}]
    (data / "account.js").write_text("window.YTD.account.part0 = " + json.dumps(account), encoding="utf-8")
    (out / "Your archive.html").write_text("<html><body>X archive (built from public-domain text)</body></html>\n")
    return counts


def write_archive(out: Path, sources: list[Path] | None = None, *, posts: int = 5700, seed: int = 0,
                  drift: bool = False) -> dict:
    """`dann bench x-archive`: `build` into `out`, a new directory, from `sources` (default: the
    Shakespeare the package ships). Built beside its final place and renamed, so a failure leaves
    nothing half-written."""
    out = Path(out)
    if out.exists():
        raise DannError(f"{out} already exists; give a new directory for the archive")
    sources = sources or [SHAKESPEARE]
    for source in sources:
        if not Path(source).is_file():
            raise DannError(f"{source}: no such file")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".x-archive-") as scratch:
        counts = build(sources, Path(scratch) / "archive", posts=posts, seed=seed, drift=drift)
        shutil.move(Path(scratch) / "archive", out)
    return {"archive": str(out), **counts}
