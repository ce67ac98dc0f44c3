"""A training run's report, beside the checkpoints: its metrics, a plot of the loss curves, and
samples at several temperatures side by side (the way the voice was judged by eye by hand)."""

import json
from pathlib import Path

from lstm.sample import generate

REPORT_TEMPERATURES = (0.25, 0.4, 0.7, 1.0)


def write_report(report_dir, rows: list[dict], model, vocab, header: str, lexicon=None, ngram=None) -> Path:
    """metrics.jsonl, loss.png and samples.md in `report_dir`; the samples spell from `lexicon`
    (lstm/lexicon.py) and mix in `ngram` (lstm/ngram.py) when given, as the served texts do."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    plot_losses(rows, report_dir / "loss.png", header)
    write_samples(model, vocab, report_dir / "samples.md", header, lexicon=lexicon, ngram=ngram)
    return report_dir


def plot_losses(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [r["train_loss"] for r in rows], marker="o", label="train")
    ax.plot(steps, [r["val_loss"] for r in rows], marker="o", label="validation")
    for key, label in (("ngram_val_loss", "n-gram baseline"), ("unigram_val_loss", "unigram baseline")):
        if rows and key in rows[-1]:
            ax.axhline(rows[-1][key], linestyle="--", linewidth=1, color="grey", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_samples(model, vocab, path: Path, header: str, per_temperature: int = 3, lexicon=None,
                  ngram=None) -> None:
    lines = [f"# Samples: {header}", ""]
    for temperature in REPORT_TEMPERATURES:
        lines += [f"## temperature {temperature}", ""]
        for mode in ("post", "reply"):
            texts = generate(model, vocab, [""] * per_temperature, mode=mode, temperature=temperature, seed=0,
                             lexicon=lexicon, ngram=ngram)
            lines += [f"- **{mode}**: {text!r}" for text, _ in texts]
        lines.append("")
    path.write_text("\n".join(lines))
