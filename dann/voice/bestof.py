"""Best-of-n: sample several candidates in one batch, drop the bad ones, keep the best.

A candidate is never served when it
- copies: what would be served, the prompt plus the continuation, or the continuation alone,
  holds a long verbatim span of the training corpus (lstm/copyindex.py). Checking the whole text
  matters: with a prompt of a post's first words and a low temperature, a continuation of a few
  new words at a time would otherwise pull a memorised post out piece by piece;
- is blocked or forgotten: it spells a term of the blocklist or contains a phrase the owner made
  dann forget (filters.py).
When every candidate of a request is one of those, the request is sampled once more at a higher
temperature (`resample_temperature`); if every new candidate is too, the answer is SAFE_LINE. So a
copy is never served, and the tally counts how often that took a second draw or the safe line.

Among the rest, a candidate is also rejected when it
- is gibberish: its mean log-probability under the (untempered) model is far below what the
  model gives real posts, which is minus its validation loss;
- loops: it repeats itself ("i am the the the …"), which low temperatures are prone to;
but if nothing else is left, the best of those is served (a fallback).

The score prefers balanced brackets and quotes, a post that ended by itself rather than at the
length cap, at least two words, a length near the text's target, and a mean log-probability near
that of real posts. Each text's target length is drawn (from its seed) from the lengths of the
person's own posts of that kind, so what is served is as often short or long as theirs are; aiming
every text at the median made them all middling. The candidates are sampled at temperatures spread
from the asked one up to 1.75 times it (see `spread`): together with the last preference this
pushes against the blandness of low temperatures, and the gibberish rule keeps the hotter
candidates honest.
"""

import dataclasses
import math
import random
import re
from collections.abc import Callable

from dann.voice.filters import Filters
from dann.voice.request import GenerationRequest
from lstm.checkpoint import Checkpoint
from lstm.copyindex import CopyIndex
from lstm.errors import DannError
from lstm.lexicon import Lexicon
from lstm.model import CharRNN
from lstm.ngram import NGramTable
from lstm.postindex import PostIndex
from lstm.sample import generate
from lstm.schema import RunRecord
from lstm.vocab import Vocab

WORD = re.compile(r"\w+(?:'\w+)*")
GIBBERISH_NATS = 1.0  # rejected when the mean log-prob is this far below real posts' (-val_loss)
LOOP_LOGP = -0.05  # ... or so high that the model is reciting, not writing
PAIRS = ("()", "[]", "{}", "“”")
LENGTH_WEIGHT = 1.5  # docs/fidelity.md has what 0.5 and 1.5 measured
LENGTH_SEED = 0x5EED1E
TEMPERATURE_SPREAD = 0.75  # candidates are sampled at 1x to 1.75x the asked temperature (see spread)
NEVER_SERVED = ("copies", "blocked", "forgotten")
# The answer when every candidate of both draws copied or was refused: short, so it copies nothing.
SAFE_LINE = "(nothing new to say)"
RESAMPLE_SEED = 1_000_003  # the second draw's seeds are offset by this, so it draws new candidates


@dataclasses.dataclass
class Tally:
    """What best-of-n did with the candidates it saw."""

    candidates: int = 0
    copies: int = 0
    blocked: int = 0
    forgotten: int = 0
    gibberish: int = 0
    loops: int = 0
    texts: int = 0  # texts asked for
    fallbacks: int = 0  # gibberish or looping picks made because nothing else was left
    all_copied: int = 0  # texts whose first draw was all copies: without the guard, a copy is served
    resampled: int = 0  # texts whose first draw had nothing that may be served, drawn again hotter
    safe_lines: int = 0  # ... whose second draw had nothing either, answered with SAFE_LINE

    def add(self, other: "Tally") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict:
        rejected = self.copies + self.blocked + self.forgotten + self.gibberish + self.loops
        return {**dataclasses.asdict(self), "rejected": rejected,
                "rejected_rate": round(rejected / self.candidates, 4) if self.candidates else None}


def loops(text: str) -> bool:
    """Half or more of the word trigrams are repeats (with at least 6 of them)."""
    words = WORD.findall(text.lower())
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(trigrams) >= 6 and len(set(trigrams)) <= len(trigrams) / 2


def balanced(text: str) -> bool:
    """Every bracket closes in order, and double quotes come in pairs."""
    closing = {close: open_ for open_, close in PAIRS}
    stack = []
    for ch in text:
        if ch in "([{“":
            stack.append(ch)
        elif ch in closing:
            if not stack or stack.pop() != closing[ch]:
                return False
    return not stack and text.count('"') % 2 == 0


def score(text: str, logp: float, *, real_logp: float, max_chars: int, typical_chars: int | None = None) -> float:
    """Higher is better. `text` is the generated part only; `typical_chars` is the length to aim
    for, when known."""
    ended = len(text) < max_chars  # the sampler stopped at <eos>, not at the cap
    off_length = abs(math.log((len(text) + 1) / (typical_chars + 1))) if typical_chars else 0.0
    return (
        -2.0 * (not balanced(text))
        - 1.0 * (not ended)
        - 1.0 * (len(WORD.findall(text)) < 2)  # a lone word or a bare emoji is rarely a good post
        - LENGTH_WEIGHT * off_length  # twice or half the target costs 1.04
        - abs(logp - real_logp)
    )


def verdict(prompt: str, text: str, logp: float, *, index: CopyIndex | None, filters: Filters | None,
            real_logp: float) -> str | None:
    """Why the candidate `text` (the continuation of `prompt`) is rejected, or None."""
    whole = prompt + text  # what is served
    if index is not None and (index.copies(whole) or index.copies(text)):
        return "copies"
    if filters is not None and (refused := filters.verdict(whole)):
        return refused
    if logp < real_logp - GIBBERISH_NATS:
        return "gibberish"
    if logp > LOOP_LOGP or loops(text):
        return "loops"
    return None


def choose(candidates: list[tuple[str, float]], *, index: CopyIndex | None, val_loss: float | None,
           max_chars: int, typical_chars: int | None = None, prompt: str = "",
           filters: Filters | None = None) -> tuple[int | None, Tally]:
    """The index of the candidate to serve among (continuation of `prompt`, mean log-prob) pairs,
    or None when every one of them copies or is refused; and the tally.

    `val_loss` is the model's validation loss (real posts score about -val_loss); without one the
    log-probability only rejects loops."""
    real_logp = -val_loss if val_loss is not None else -float("inf")
    tally = Tally(candidates=len(candidates))
    reasons = [verdict(prompt, text, logp, index=index, filters=filters, real_logp=real_logp)
               for text, logp in candidates]
    for reason in reasons:
        if reason is not None:
            setattr(tally, reason, getattr(tally, reason) + 1)
    scores = [score(text, logp, real_logp=real_logp if val_loss is not None else logp, max_chars=max_chars,
                    typical_chars=typical_chars) for text, logp in candidates]
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    # A fallback (gibberish, a loop) must not hold a blocked or forgotten term even inside a word.
    picks = ([i for i in ranked if reasons[i] is None]
             or [i for i in ranked if reasons[i] not in NEVER_SERVED
                 and not (filters is not None and filters.glued(prompt + candidates[i][0]))])
    if not picks:
        return None, tally
    tally.fallbacks += reasons[picks[0]] is not None
    return picks[0], tally


def target_length(quantiles: list[float], seed: int) -> int:
    """A length drawn from the person's: the percentiles interpolated at a uniform draw from `seed`."""
    u = random.Random(seed ^ LENGTH_SEED).random() * (len(quantiles) - 1)
    low = int(u)
    high = min(low + 1, len(quantiles) - 1)
    return round(quantiles[low] + (u - low) * (quantiles[high] - quantiles[low]))


def resample_temperature(temperature: float) -> float:
    """The second draw's temperature: hot enough to leave a memorised path (at least +0.5), but not
    above 2 unless the first was already."""
    return max(temperature, min(max(2 * temperature, temperature + 0.5), 2.0))


def spread(j: int, n: int) -> float:
    """Candidate j of n samples at this multiple of the asked temperature: 1 for the first, rising
    evenly to 1 + TEMPERATURE_SPREAD for the last.

    Candidates all sampled at 0.4 are fluent but alike (distinct-2 well below real posts':
    docs/measurements.md); spread up to 0.7, the filter catches the gibberish a higher temperature
    sometimes makes, and the score picks what reads most like real text."""
    return 1.0 + TEMPERATURE_SPREAD * j / (n - 1) if n > 1 else 1.0


def generate_best(model, vocab, prompts: list[str], *, n: int, index: CopyIndex | None, val_loss: float | None,
                  mode: list[str], context: list[str | None], temperature: list[float], seed: list[int],
                  max_chars: int, cut: list[int] | None = None, typical_chars: dict | None = None,
                  lengths: dict | None = None, sampler: Callable = generate,
                  top_k: list[int] | None = None, top_p: list[float] | None = None,
                  filters: Filters | None = None, lexicon: Lexicon | None = None,
                  ngram: NGramTable | None = None) -> tuple[list[str], Tally]:
    """For each prompt, the best of `n` candidates (prompt + continuation), all sampled in one call,
    at temperatures spread from the asked one upwards (see `spread`); prompts with nothing that may
    be served are drawn once more, hotter, in a second call, and then get SAFE_LINE.

    Settings are per prompt. Candidate j of prompt i is seeded `seed[i] * n + j`, so a prompt's
    answer depends on its own seed only, not on what it was batched with. Each continuation is cut
    to `cut[i]` characters (default `max_chars`) before it is checked, so the check sees exactly
    what is served. With a `lexicon`, candidates spell only the person's words; with an `ngram`,
    they are drawn from the LSTM mixed with it (lstm/ngram.py). `lengths` maps a
    mode to the percentiles of the person's lengths (the run record's), from which each text's
    target length is drawn with its seed; without them `typical_chars`, the median length of that
    kind (the record's median_chars), is every text's target."""
    cut = cut or [max_chars] * len(prompts)
    tally = Tally(texts=len(prompts))
    aim = [min(target_length(lengths[m], s), c) if (lengths or {}).get(m) else (typical_chars or {}).get(m)
           for m, s, c in zip(mode, seed, cut, strict=True)]

    def draw(which: list[int], temperatures: list[float], seeds: list[int], first: bool) -> dict[int, str | None]:
        rows = [(i, j) for i in which for j in range(n)]  # `generate` pads them to a power of two
        generated = sampler(
            model, vocab, [prompts[i] for i, _ in rows],
            mode=[mode[i] for i, _ in rows],
            context=[context[i] for i, _ in rows],
            temperature=[temperatures[i] * spread(j, n) for i, j in rows],
            seed=[(seeds[i] * n + j) % 2**32 for i, j in rows],
            top_k=[top_k[i] for i, _ in rows] if top_k else 0,
            top_p=[top_p[i] for i, _ in rows] if top_p else 1.0,
            max_chars=max_chars,
            lexicon=lexicon,
            ngram=ngram,
        )
        picked = {}
        for k, i in enumerate(which):
            prompt = prompts[i]
            candidates = [(text[len(prompt):][:cut[i]], logp) for text, logp in generated[k * n:(k + 1) * n]]
            # The cut is the length cap this text had: a candidate that reaches it did not end by itself.
            best, seen = choose(candidates, index=index, val_loss=val_loss, max_chars=cut[i],
                                typical_chars=aim[i], prompt=prompt, filters=filters)
            tally.add(seen)
            tally.all_copied += first and seen.copies == len(candidates)
            picked[i] = None if best is None else prompt + candidates[best][0]
        return picked

    picked = draw(list(range(len(prompts))), temperature, seed, first=True)
    again = [i for i, text in picked.items() if text is None]
    if again:
        tally.resampled += len(again)
        hotter = [resample_temperature(t) for t in temperature]
        picked.update(draw(again, hotter, [(s + RESAMPLE_SEED) % 2**32 for s in seed], first=False))
    tally.safe_lines += sum(text is None for text in picked.values())
    return [SAFE_LINE if picked[i] is None else picked[i] for i in range(len(prompts))], tally


@dataclasses.dataclass(frozen=True)
class Voice:
    """A model as best-of-n serves it: the model and vocabulary, the copy index, the run record
    whose validation loss and typical lengths score the candidates, and the lexicon the sampler
    spells from."""

    model: CharRNN
    vocab: Vocab
    copy_index: CopyIndex | None  # None: a version saved before the copy filter, which is never served
    record: RunRecord
    version: int | None = None  # the checkpoint version, once published
    lexicon: Lexicon | None = None  # None: spelled freely (DANN_KNOWN_WORDS=false, or an older version)
    ngram: NGramTable | None = None  # None: the LSTM alone (a version trained without the mixture)
    posts: PostIndex | None = None  # what "why?" and the game read; None in versions published before them

    @classmethod
    def of(cls, checkpoint: Checkpoint, known_words: bool = True) -> "Voice":
        return cls(checkpoint.model, checkpoint.vocab, checkpoint.copy_index, RunRecord.of(checkpoint),
                   checkpoint.version, checkpoint.lexicon if known_words else None, ngram=checkpoint.ngram,
                   posts=checkpoint.posts)


def servable(voice: Voice) -> Voice:
    """`voice`, if it may speak to anyone: a version without a copy index could recite the
    person's posts unchecked, so it is refused as a version that cannot load is."""
    if voice.copy_index is None:
        raise DannError(f"model version {voice.version} has no copy index (it was saved before the copy "
                        "filter), so nothing it says could be checked for copies: train a new version")
    return voice


def answer(voice: Voice, requests: list[GenerationRequest], *, best_of: int, max_chars: int,
           filters: Filters | None = None) -> tuple[list[list[str]], Tally]:
    """Every text of every request, each the best of `best_of` candidates, in one sampler call
    (and a second for texts whose candidates all copied or were refused).

    Sampling runs to `max_chars` new characters for all (one compiled shape for a server); each
    text is cut to its own request's `max_chars` before it is checked. Text i of a request is
    seeded seed + i."""
    rows = [(r, i) for r in requests for i in range(r.n)]
    texts, tally = generate_best(
        voice.model, voice.vocab, [r.prompt for r, _ in rows], n=best_of, index=voice.copy_index,
        # Candidates' log-probabilities are per token: so is the loss they are compared with.
        val_loss=voice.record.val_loss / voice.record.tokens_per_char if math.isfinite(voice.record.val_loss) else None,
        typical_chars=voice.record.median_chars, lengths=voice.record.lengths, lexicon=voice.lexicon,
        ngram=voice.ngram,
        mode=[r.mode for r, _ in rows], context=[r.context for r, _ in rows],
        temperature=[r.temperature for r, _ in rows], seed=[(r.seed or 0) + i for r, i in rows],
        top_k=[r.top_k for r, _ in rows], top_p=[r.top_p for r, _ in rows], max_chars=max_chars,
        cut=[min(r.max_chars or max_chars, max_chars) for r, _ in rows], filters=filters,
    )
    texts = iter(texts)
    return [[next(texts) for _ in range(r.n)] for r in requests], tally
