"""The `dann` command. Each subcommand parses its arguments, builds Settings and calls the library.

Expected failures (lstm/errors.py's DannError: bad input, no checkpoint, a diverged run) end as one
line on stderr and exit 1; argument errors exit 2. Anything else is a bug and shows its traceback.
"""

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("dann")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 5.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 5 (0 is greedy), got {value:g}")
    return value


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_training_options(p: argparse.ArgumentParser):
    p.add_argument("--minutes", type=positive(float), help="time budget (default: DANN_TRAIN_MINUTES, 5)")
    p.add_argument("--steps", type=positive(int), help="step budget; training stops at whichever comes first")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--fresh", action="store_true", help="start from scratch instead of resuming")
    p.add_argument("--config", type=Path, help="hyperparameters from a JSON file such as `dann tune` writes; "
                                               "flags override it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_section_flags(p.add_argument_group("model (saved in the checkpoint)"), "model")
    add_section_flags(p.add_argument_group("training (saved in the checkpoint)"), "train")
    add_section_flags(p.add_argument_group("speed (how fast a step runs, not what it learns)"), "speed")


def section_flags(section: str) -> list:
    """The fields of a config section (lstm/schema.py) that `dann train` takes as flags."""
    from lstm.schema import SECTIONS

    return [f for f in dataclasses.fields(SECTIONS[section]) if "flag" in f.metadata]


def add_section_flags(p, section: str) -> None:
    """One flag per field the schema marks: its type, help and choices come from the field. A flag
    left out is None, so the layers below it (lstm/schema.py, trainer/config.py) decide."""
    import typing

    for field in section_flags(section):
        spec = field.metadata["flag"]
        names = [f"--{field.name.replace('_', '-')}"] + ([spec["alias"]] if spec["alias"] else [])
        kind = next(k for k in typing.get_args(field.type) or (field.type,) if k is not type(None))
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind)  # string annotations
        if kind is bool:
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            p.add_argument(*names, action=action, default=None, help=spec["help"])
        elif spec["choices"]:
            p.add_argument(*names, choices=list(spec["choices"]), help=spec["help"])
        else:
            p.add_argument(*names, type=positive(kind) if spec["positive"] else kind, help=spec["help"])


EXPORT_HELP = ("an X archive (.zip, folder, tweets.js, tweets.csv), a Discord data package (.zip, folder), a "
               "DiscordChatExporter .json, a .txt, or a folder of any of them")


def add_corpus_arguments(p: argparse.ArgumentParser, optional: bool = True, dms: bool = True):
    if optional:
        p.add_argument("path", type=Path, nargs="?", help=EXPORT_HELP + " (default: what the trainer reads: "
                       "DANN_EXPORT_PATH and the post store)")
    else:
        p.add_argument("path", type=Path, help=EXPORT_HELP)
    p.add_argument("--split", choices=["lines", "paragraphs"], help="how a .txt is cut into posts (default: detect)")
    p.add_argument("--author", help="whose messages to learn, in a DiscordChatExporter file with several authors")
    if dms:
        add_dms_option(p)


def add_dms_option(p: argparse.ArgumentParser):
    p.add_argument("--include-dms", action="store_true", default=None,
                   help="also learn from DMs and group DMs, which are private and left out by default "
                        "(DANN_INCLUDE_DMS)")


def include_dms(args, settings) -> bool:
    return bool(args.include_dms or settings.include_dms)


def build_parser() -> Parser:
    parser = Parser(prog="dann", description="dann learns one person's voice from their posts and speaks it.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = commands.add_parser("train", help="train on a post export or a .txt and save a checkpoint")
    add_corpus_arguments(p)
    add_training_options(p)

    p = commands.add_parser("corpus", help="print the posts and replies read from an export, as JSON lines")
    add_corpus_arguments(p)
    p.add_argument("--stats", action="store_true", help="print one JSON object of counts instead")

    p = commands.add_parser("import", help="add an export's posts to the post store, which the trainer reads "
                                           "besides DANN_EXPORT_PATH")
    add_corpus_arguments(p, optional=False, dms=False)  # private messages never go into the store
    p.add_argument("--checkpoint-dir", help="whose store (default: DANN_CHECKPOINT_DIR)")

    p = commands.add_parser("learn", help="read the person's new posts, edits and deletions from their accounts "
                                          "(DANN_LEARN_*) into the post store, once")
    p.add_argument("--checkpoint-dir", help="whose store (default: DANN_CHECKPOINT_DIR)")

    p = commands.add_parser("sample", help="print posts or replies from the latest checkpoint")
    p.add_argument("--mode", choices=["post", "reply"], default="post")
    p.add_argument("--temp", "--temperature", type=temperature, help="default: DANN_TEMPERATURE, 0.7")
    p.add_argument("--top-k", type=int, default=0, help="keep the k likeliest characters (0: off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0: off)")
    p.add_argument("--prompt", default="", help="the start of the text to continue")
    p.add_argument("-n", type=positive(int), default=1, help="how many samples")
    p.add_argument("--max-chars", type=positive(int), help="default: DANN_MAX_CHARS, 280")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--best-of", type=positive(int),
                   help="candidates per sample, of which the copy filter and a score pick one "
                        "(default: DANN_BEST_OF, 8; 1: off)")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--json", action="store_true", help="one JSON object per sample")

    p = commands.add_parser("why", help="the real posts a text is closest to, and the longest run of words it shares")
    p.add_argument("text", help="the text dann wrote (- reads it from standard input)")
    p.add_argument("-k", type=positive(int), default=3, help="how many posts (default 3)")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = commands.add_parser("eval", help="val loss beside baselines, copy rate, distinct-n and length of samples")
    p.add_argument("path", type=Path, nargs="?", help="the export the model was trained on (default: DANN_EXPORT_PATH)")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--split", choices=["lines", "paragraphs"], help="how a .txt was cut into posts (default: detect)")
    p.add_argument("--author", help="whose messages, in a DiscordChatExporter file with several authors")
    add_dms_option(p)
    p.add_argument("--samples", type=positive(int), default=100, help="generated posts and replies (default 100)")
    p.add_argument("--best-of", type=positive(int), help="default: DANN_BEST_OF, 8")
    p.add_argument("--temp", "--temperature", type=temperature, help="default: DANN_TEMPERATURE, 0.7")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--known-words", action=argparse.BooleanOptionalAction,
                   help="spell only the person's words (default: DANN_KNOWN_WORDS, true)")
    p.add_argument("--ngram-mix", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the model with its n-gram mixture, if it has one (default: yes)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    p = commands.add_parser("tune", help="try configs around the current one briefly each, write the best")
    p.add_argument("path", type=Path, help="the post export to tune on")
    add_dms_option(p)
    p.add_argument("--minutes", type=positive(float), help="the whole budget (default 10, or none with --steps)")
    p.add_argument("--steps", type=positive(int), help="steps per trial (architecture and learning rate); with "
                                                        "--minutes, whichever ends first")
    p.add_argument("--out", type=Path, help="default: CHECKPOINT_DIR/tuned.json, which the trainer reads")
    p.add_argument("--config", type=Path, help="the config to start from (default: DANN_TRAIN_CONFIG, or the "
                                               "last tuned.json, or the defaults)")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--json", action="store_true", help="print every trial as one JSON object")

    p = commands.add_parser("forget", help="never serve a phrase again, and leave it out of the next training run")
    p.add_argument("text", nargs="?", help="the phrase to forget (case, accents, punctuation and spacing aside)")
    p.add_argument("--list", action="store_true", help="print the forgotten phrases, one a line")
    p.add_argument("--remove", metavar="TEXT", help="stop forgetting this phrase")
    p.add_argument("--checkpoint-dir", help="where the list is kept (default: DANN_CHECKPOINT_DIR)")

    p = commands.add_parser("trainer", help="retrain on DANN_EXPORT_PATH on the DANN_TRAIN_CRON schedule")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="run one retrain now and exit")
    when.add_argument("--now", action="store_true", help="run one retrain now, then follow the schedule")

    p = commands.add_parser("status", help="the served model and the next scheduled retrain")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")

    p = commands.add_parser("bench", help="measure training and sampling speed (PyTorch as reference if installed)")
    which = p.add_subparsers(dest="bench", required=True, parser_class=Parser)
    b = which.add_parser("train", help="training chars/s and matmul utilisation")
    b.add_argument("--batch", type=positive(int), default=64)
    b.add_argument("--seq", type=positive(int), default=128)
    b.add_argument("--hidden", type=positive(int), default=256)
    b.add_argument("--layers", type=positive(int), default=2)
    b.add_argument("--steps", type=positive(int), default=10, help="steps per timed round")
    b.add_argument("--repeats", type=positive(int), default=3, help="timed rounds (the median counts)")
    b.add_argument("--no-reference", action="store_true", help="skip PyTorch even if installed")
    add_section_flags(b, "speed")
    b = which.add_parser("sample", help="milliseconds per generation")
    b.add_argument("--hidden", type=positive(int), default=256)
    b.add_argument("--layers", type=positive(int), default=2)
    b.add_argument("--chars", type=positive(int), default=280)
    b.add_argument("--candidates", type=positive(int), default=8)
    b.add_argument("--repeats", type=positive(int), default=20)
    b.add_argument("--no-reference", action="store_true", help="skip PyTorch even if installed")
    b.add_argument("--served", type=Path, metavar="CHECKPOINT_DIR",
                   help="time the newest model there as served (lexicon on), with its n-gram mixture and without")
    b = which.add_parser("why", help="milliseconds per \"why?\" lookup, on texts the served model writes")
    b.add_argument("served", type=Path, metavar="CHECKPOINT_DIR")
    b.add_argument("--texts", type=positive(int), default=100, help="texts to write and look up (default 100)")
    b = which.add_parser("x-archive", help="write a realistic-size X archive built from public-domain text")
    b.add_argument("out", type=Path, help="the archive directory to create")
    b.add_argument("--source", type=Path, action="append",
                   help="a play like trainer/corpora/shakespeare.txt, or one text per line; repeatable "
                        "(default: the bundled Shakespeare)")
    b.add_argument("--posts", type=positive(int), default=5700)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--drift", action="store_true",
                   help="the mix moves from the first source to the last over time (default: one mix throughout)")

    p = commands.add_parser("bot", help="run the Discord bot (token in DANN_DISCORD_TOKEN)")
    p.add_argument("--sync", action="store_true", help="publish the /dann slash commands (first run, or after changes)")

    p = commands.add_parser("web", help="serve the playground page and its JSON API")
    p.add_argument("--host", help="default: DANN_WEB_HOST, 127.0.0.1")
    p.add_argument("--port", type=int, help="default: DANN_WEB_PORT, 8000")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")

    p = commands.add_parser("poster", help="post and answer mentions on X, Mastodon and Bluesky (DANN_X_*, "
                                           "DANN_MASTODON_*, DANN_BLUESKY_*)")
    p.add_argument("--dry-run", action="store_true", help="print what would be posted, send nothing (the default "
                                                          "until DANN_POSTER_LIVE=true)")
    p.add_argument("--once", action="store_true", help="one round (due posts, new mentions), then exit")
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")

    p = commands.add_parser("demo", help="train on the bundled Shakespeare for a few minutes, sample, serve the page")
    p.add_argument("--minutes", type=positive(float), default=5.0)
    p.add_argument("--checkpoint-dir", help="default: DANN_CHECKPOINT_DIR")
    p.add_argument("--no-web", action="store_true", help="stop after the samples instead of serving the page")
    return parser


def given(args, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def training_flags(args) -> dict:
    """The hyperparameter flags given, as a layer for trainer/config.py's `resolve`. A step budget
    without --minutes drops the time budget: the run ends after that many steps."""
    names = {section: [f.name for f in section_flags(section)] for section in ("model", "train", "speed")}
    train = given(args, names["train"])
    if args.minutes:
        train["minutes"] = args.minutes
    if args.steps:
        train["max_steps"] = args.steps
        train.setdefault("minutes", None)
    return {"model": given(args, names["model"]), "train": train, "speed": given(args, names["speed"])}


def cmd_train(args, settings) -> None:
    from dann.state.bucket import local_only
    from dann.voice.filters import blocklist_for
    from trainer.config import resolve
    from trainer.data import prepare
    from trainer.lock import TrainerLock
    from trainer.train import latest_start, train

    checkpoint_dir = local_only(settings, "dann train")
    # The trainer's lock, from the start (a refusal is the only line) to the last version written:
    # beside the trainer, or another writer, both would number versions from the same latest one.
    with TrainerLock(checkpoint_dir, "dann train"):
        corpus = read_sources(args, settings)
        config = resolve(chars=corpus.chars, minutes=settings.train_minutes, file=args.config,
                         recency_half_life_days=settings.recency_half_life_days,
                         flags=training_flags(args))
        log.info("hyperparameters: %s", config.describe())
        data = prepare(corpus, config.train, blocklist=blocklist_for(settings))
        start = None if args.fresh else latest_start(checkpoint_dir, data, config)
        result = train(data, config, checkpoint_dir, start=start, progress=not args.quiet)
    print(json.dumps(result.summary()))


def read_sources(args, settings):
    """The export given, or, with none, what the trainer reads: DANN_EXPORT_PATH and the post store."""
    from dann.state.posts import post_store
    from dann.voice.forget import forget_list
    from trainer.retrain import read_export

    given = args.path is not None
    return read_export(args.path if given else settings.export_path, forget_list(settings),
                       include_dms=include_dms(args, settings), split=args.split, author=args.author,
                       posts=None if given else post_store(settings))


def cmd_import(args, settings) -> None:
    from dann.state.posts import post_store
    from dann.voice.forget import forget_list
    from trainer.retrain import read_export, stored_posts

    corpus = read_export(args.path, forget_list(settings), split=args.split, author=args.author)
    added = post_store(settings).add(stored_posts(corpus), f"export:{args.path.name}")
    print(json.dumps({"export": str(args.path), "posts": len(corpus.records), **added.as_dict()}))


def cmd_corpus(args, settings) -> None:
    from dann.state.posts import post_store

    corpus = read_sources(args, settings)
    if args.stats:
        stats = corpus.stats()
        if args.path is None:  # what the trainer reads: the accounts' last polls too, with what they kept out
            stats["learned"] = post_store(settings).polls()
        print(json.dumps(stats, ensure_ascii=False))
        return
    for record in corpus.records:
        print(json.dumps(dataclasses.asdict(record), ensure_ascii=False))


def cmd_sample(args, settings) -> None:
    from dann.state.bucket import local_folder
    from dann.voice.bestof import Voice, answer, servable
    from dann.voice.filters import filters_for
    from dann.voice.request import GenerationRequest
    from lstm.checkpoint import load_latest
    from lstm.errors import DannError

    request = GenerationRequest(args.mode, args.prompt, temperature=settings.temperature if args.temp is None
                                else args.temp, n=args.n, seed=args.seed, max_chars=args.max_chars,
                                top_k=args.top_k, top_p=args.top_p)
    filters = filters_for(settings)
    if why := filters.refusal(request):
        raise DannError(why)
    voice = servable(Voice.of(load_latest(local_folder(settings)), settings.known_words))
    (texts,), tally = answer(voice, [request], best_of=args.best_of or settings.best_of,
                             max_chars=args.max_chars or settings.max_chars, filters=filters)
    for i, text in enumerate(texts):
        if args.json:
            print(json.dumps({"text": text, "version": voice.version}))
        else:
            print(("\n---\n" if i else "") + text)
    log.info("best-of-n: %s", tally.as_dict())


def cmd_why(args, settings) -> None:
    from dann.state.bucket import local_folder
    from dann.voice.bestof import Voice
    from dann.voice.filters import filters_for
    from dann.voice.why import explain
    from lstm.checkpoint import load_latest

    text = sys.stdin.read() if args.text == "-" else args.text
    explained = explain(Voice.of(load_latest(local_folder(settings))), text, filters_for(settings), k=args.k)
    if args.json:
        print(json.dumps({**explained.as_dict(), "summary": explained.summary()}, ensure_ascii=False))
        return
    print(explained.summary())
    if not explained.posts:
        print("It shares no rare word with any post dann may show.")
    for n, post in enumerate(explained.posts, 1):
        where = f" [{post['id']}]" if post["id"] else ""
        print(f"\n{n}.{where} {post['text']}\n   shares: {', '.join(post['shared'])}")


def cmd_eval(args, settings) -> None:
    from dann.state.bucket import local_folder
    from dann.voice.filters import filters_for
    from dann.voice.forget import forget_list
    from lstm.checkpoint import load_latest
    from lstm.errors import DannError
    from trainer.evaluation import evaluate_checkpoint, table
    from trainer.retrain import read_export

    path = args.path or settings.export_path
    if path is None:
        raise DannError("give the export to evaluate on (or set DANN_EXPORT_PATH)")
    ckpt = load_latest(local_folder(settings))
    result = evaluate_checkpoint(
        ckpt, read_export(path, forget_list(settings), include_dms=include_dms(args, settings), split=args.split,
                          author=args.author), samples=args.samples,
        best_of=args.best_of or settings.best_of, temperature=settings.temperature if args.temp is None else args.temp,
        max_chars=settings.max_chars, seed=args.seed, filters=filters_for(settings),
        known_words=settings.known_words if args.known_words is None else args.known_words,
        ngram_mix=args.ngram_mix,
    )
    print(json.dumps(result) if args.json else table(result))


def cmd_tune(args, settings) -> None:
    from trainer.tuned import render, tune_export

    minutes = args.minutes if args.minutes or args.steps else 10.0
    result = tune_export(args.path, settings, minutes=minutes, steps=args.steps, out=args.out, config=args.config,
                         include_dms=include_dms(args, settings))
    print(json.dumps(result) if args.json else render(result))


def cmd_forget(args, settings) -> None:
    from dann.voice.forget import forget_list
    from lstm.errors import DannError

    forget = forget_list(settings)
    if sum([args.text is not None, args.list, args.remove is not None]) != 1:
        raise DannError("give one of: a phrase to forget, --list, or --remove PHRASE")
    if args.list:
        for phrase in forget.phrases():
            print(phrase)
    elif args.remove is not None:
        if not forget.remove(args.remove):
            raise DannError(f"{args.remove!r} is not on the forget list (in {forget.store.where})")
        print(f"No longer forgotten: {args.remove!r}. The next training run may learn it again.")
    elif forget.add(args.text):
        print(f"Forgotten: {args.text!r}. It is never served from now on, and the next training run "
              f"leaves out every post holding it (kept in {forget.store.where}).")
    else:
        print(f"{args.text!r} was forgotten already.")


def cmd_trainer(args, settings) -> None:
    from dann.poster.learn import learn_once, learners
    from trainer.runner import run_trainer

    learners(settings)  # an account named wrongly is one line now, not a log line at every run
    result = run_trainer(settings, once=args.once, now=args.now,
                         learn=(lambda: learn_once(settings)) if has_accounts(settings) else None)
    if result is not None:
        print(json.dumps({"outcome": result.outcome, "version": result.version, "reason": result.reason}))


def has_accounts(settings) -> bool:
    return bool(settings.learn_mastodon_account or settings.learn_bluesky_handle or settings.learn_x_user)


def cmd_learn(args, settings) -> None:
    from dann.poster.learn import learn_once
    from lstm.errors import DannError

    if not has_accounts(settings):
        raise DannError("name the person's accounts to learn from: DANN_LEARN_MASTODON_ACCOUNT, "
                        "DANN_LEARN_BLUESKY_HANDLE or DANN_LEARN_X_USER")
    results = learn_once(settings)
    for result in results:
        print(json.dumps(result))
    if failed := [r for r in results if "error" in r]:
        raise DannError(f"{failed[0]['platform']} {failed[0]['account']}: {failed[0]['error']}")


def cmd_status(args, settings) -> None:
    from dann.serving.status import render_text, summary
    from dann.serving.votes import Votes, shown_tally
    from dann.state import open_store
    from dann.state.bucket import local_folder
    from dann.state.posts import post_store
    from dann.voice.bestof import Voice
    from lstm.checkpoint import NoCheckpoint, load_latest
    from trainer.retrain import converged_since
    from trainer.runner import next_run

    checkpoint_dir = local_folder(settings)
    try:
        status = summary(Voice.of(load_latest(checkpoint_dir)))
    except NoCheckpoint:
        status = {"version": None}
    if status["version"] is not None:
        status["converged_since"] = converged_since(checkpoint_dir, status["version"])
    if status["version"] is not None and (game := shown_tally(settings, Votes(open_store(settings)),
                                                                status["version"])):
        status["game"] = game
    upcoming = next_run(settings)
    status["next_run"] = upcoming.isoformat() if upcoming else None
    status["new_posts"] = post_store(settings).since_trained(status.get("trained_at"))
    if args.json:
        print(json.dumps(status))
        return
    print(render_text(status, where=str(checkpoint_dir)))


def cmd_bench(args, settings) -> None:
    from trainer import bench

    if args.bench == "x-archive":
        from trainer.bench_corpus import write_archive

        result = write_archive(args.out, args.source, posts=args.posts, seed=args.seed, drift=args.drift)
    elif args.bench == "train":
        result = bench.bench_train(args.batch, args.seq, args.hidden, args.layers, args.steps, args.repeats,
                                   reference=not args.no_reference, unroll=args.unroll, bf16=bool(args.bf16))
    elif args.bench == "why":
        result = bench.bench_why(args.served, args.texts)
    elif args.served:
        result = bench.bench_served(args.served, args.chars, args.candidates, args.repeats)
    else:
        result = bench.bench_sample(args.hidden, args.layers, args.chars, args.candidates, args.repeats,
                                    reference=not args.no_reference)
    print(json.dumps(result))


def cmd_bot(args, settings) -> None:
    from bot import run_bot

    run_bot(settings, sync=args.sync)


def cmd_poster(args, settings) -> None:
    from dann.poster.poster import run_poster

    run_poster(settings, live=settings.poster_live and not args.dry_run, once=args.once)


def cmd_web(args, settings) -> None:
    from web.app import run_web

    run_web(settings, host=args.host, port=args.port)


def cmd_demo(args, settings) -> None:
    from dann.state.bucket import local_only
    from trainer.demo import CORPUS, device_name, train_demo

    print(f"Training on {CORPUS.name} (seven Shakespeare plays) for {args.minutes:g} minutes on "
          f"{device_name()}; each speech is one 'post'.", flush=True)
    demo = train_demo(local_only(settings, "dann demo"), args.minutes, known_words=settings.known_words)
    summary = demo.summary
    print(f"\nValidation loss {summary['val_loss']:.3f} nats/char ({summary['bpc']:.2f} bits), "
          f"next-character accuracy {summary['val_acc']:.0%}, after {summary['steps']} steps.")
    for temp, text in demo.samples.items():
        print(f"\n=== temperature {temp} ===\n{text}")
    print(f"\nThe model is saved in {settings.checkpoint_dir}/ (version {summary['version']}). Next:\n"
          f"  dann sample -n 3                         more posts (DANN_TEMPERATURE, 0.7)\n"
          f"  dann sample --prompt 'KING.' --temp 0.7   continue a prompt\n"
          f"  dann corpus YOUR_EXPORT.zip --stats       what dann reads from your X or Discord export\n"
          f"  dann train YOUR_EXPORT.zip --minutes 10   learn your own voice")
    if args.no_web:
        return
    from web.app import run_web

    print(f"\nPlay with it in your browser: http://{settings.web_host}:{settings.web_port}/  (Ctrl-C stops)", flush=True)
    run_web(settings)


COMMANDS = {"train": cmd_train, "corpus": cmd_corpus, "import": cmd_import, "learn": cmd_learn, "sample": cmd_sample, "why": cmd_why, "eval": cmd_eval,
            "tune": cmd_tune,
            "forget": cmd_forget, "trainer": cmd_trainer,
            "status": cmd_status, "bench": cmd_bench, "bot": cmd_bot, "web": cmd_web, "demo": cmd_demo,
            "poster": cmd_poster}


def process_settings(command: str):
    """The settings sections a command's process reads: the long-running ones load only their own,
    so that each shows what it depends on (dann/settings.py); the others load every section."""
    from dann import settings

    return {"bot": settings.DiscordSettings, "web": settings.WebSettings, "poster": settings.PosterSettings,
            "trainer": settings.TrainerSettings}.get(command, settings.Settings)


def main(argv=None) -> int:
    from dann.process import configure_logging, keep_freed_memory, use_compilation_cache

    keep_freed_memory()
    # Before anything imports orbax: absl's logging gives the root logger a handler of its own
    # (with its own format) when it logs and finds none.
    configure_logging()
    args = build_parser().parse_args(argv)

    from dann.settings import load_settings
    from lstm import native
    from lstm.errors import DannError

    try:
        # --checkpoint-dir (a folder or a bucket URL) over DANN_CHECKPOINT_DIR, for every command
        given = {"checkpoint_dir": args.checkpoint_dir} if getattr(args, "checkpoint_dir", None) else {}
        settings = load_settings(process_settings(args.command), **given)
        use_compilation_cache(settings.jax_cache_dir)
        native.configure(settings.native_lstm, settings.native_dir)
        COMMANDS[args.command](args, settings)
    except DannError as error:  # expected: one line. Anything else is a bug and keeps its traceback
        print(f"dann: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dann: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
