"""`dann bench train|sample`: speed, measured, with PyTorch's nn.LSTM as the reference when installed.

Each benchmark prints one JSON line. Ours and the reference run in alternating rounds in the same
process, so a machine that gets slower or faster mid-run affects both alike; the median round
counts. Utilisation is the model's own matmul FLOPs per second against a large f32 matmul timed
in the same rounds, whose fastest round is the peak this machine reaches through XLA.
"""

import os
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from dann.voice.bestof import Voice, answer, servable
from dann.voice.blocklist import Blocklist
from dann.voice.filters import Filters
from dann.voice.request import GenerationRequest
from dann.voice.why import explain
from lstm.checkpoint import load_latest
from lstm.errors import DannError
from lstm.model import CharRNN
from lstm.sample import generate
from lstm.schema import RunConfig
from lstm.vocab import EOS, Vocab
from trainer.budget import Budget
from trainer.config import resolve
from trainer.train import make_optimizer, train_step

VOCAB = 96  # the size that made words appear in the hand-built version


def peak_round(size: int | None = None):
    """A round of one (size x size) @ (size x size) f32 matmul through XLA (2048 on a CPU, 8192 on a
    GPU), compiled, and its FLOPs. The fastest of its rounds is the peak this machine reaches."""
    size = size or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    return (lambda: matmul(a).block_until_ready()), 2 * size**3


def train_flops_per_char(hidden: int, layers: int, vocab: int) -> float:
    """Matmul FLOPs per character of one training step: forward (recurrent 4-gate matmul per layer,
    input projection for layers 2..N, the head) and a backward pass of twice that."""
    forward = layers * 2 * hidden * 4 * hidden + (layers - 1) * 2 * hidden * 4 * hidden + 2 * hidden * vocab
    return 3 * forward


def rounds(contenders: dict, count: int) -> dict:
    """Seconds of each contender's rounds, running them in turn, `count` times."""
    times = {name: [] for name in contenders}
    for _ in range(count):
        for name, run in contenders.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    return times


def jax_train_round(config: RunConfig):
    """A round of `config.train.max_steps` training steps of our model on random tokens, compiled."""
    batch, seq = config.train.batch_size, config.train.seq_len
    model = CharRNN(config.model.config(VOCAB), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    tx = make_optimizer(config.train)
    state = {"params": params, "opt": tx.init(params), "carry": model.init_carry(batch), "step": 0}
    data = jax.random.randint(jax.random.key(0), (1_000_000,), 0, VOCAB)
    starts = jnp.zeros(1, jnp.int32)
    key = jax.random.key(1)

    def run():
        for _ in Budget(max_steps=config.train.max_steps):
            state["params"], state["opt"], state["carry"], loss, _ = train_step(
                graphdef, tx, state["params"], state["opt"], state["carry"], data, starts, key, state["step"], 1e-3,
                batch=batch, seq=seq, stateful=False, speed=config.speed)
            state["step"] += 1
        loss.block_until_ready()

    run()  # compile
    return run


def torch_device() -> str:
    """PyTorch runs where JAX does: cuDNN's LSTM on a GPU, oneDNN's on a CPU."""
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def torch_train_round(batch: int, seq: int, hidden: int, layers: int, steps: int):
    import torch

    torch.manual_seed(0)
    device = torch_device()

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, hidden)
            self.lstm = torch.nn.LSTM(hidden, hidden, layers, batch_first=True)
            self.head = torch.nn.Linear(hidden, VOCAB)

        def forward(self, x):
            return self.head(self.lstm(self.embed(x))[0])

    model = Reference().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, VOCAB, (1_000_000,), device=device)

    def run():
        for _ in range(steps):
            starts = torch.randint(0, len(data) - seq - 1, (batch,), device=device)
            chunk = data[starts[:, None] + torch.arange(seq + 1, device=device)]
            loss = torch.nn.functional.cross_entropy(model(chunk[:, :-1]).reshape(-1, VOCAB), chunk[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    run()  # warm up
    return run


def torch_available() -> bool:
    """Whether the `bench` extra (PyTorch) is installed; it gets all cores, as XLA does."""
    try:
        import torch
    except ImportError:
        return False
    torch.set_num_threads(os.cpu_count())
    return True


def bench_train(batch=64, seq=128, hidden=256, layers=2, steps=10, repeats=3, reference=True, unroll=None,
                bf16=False) -> dict:
    speed = {"bf16": bf16} | ({"unroll": unroll} if unroll else {})  # unset: the device's default
    config = resolve(chars=None, flags={"model": {"hidden": hidden, "layers": layers}, "speed": speed,
                                        "train": {"batch_size": batch, "seq_len": seq, "max_steps": steps,
                                                  "minutes": None}})
    # The peak is timed in every round too: a VM's speed can move within minutes, and a peak taken
    # once, at a slow moment, made utilisation read high (docs/measurements.md).
    peak_run, peak_flops = peak_round()
    contenders = {"jax": jax_train_round(config), "peak": peak_run}
    if reference and torch_available():
        contenders["torch"] = torch_train_round(batch, seq, hidden, layers, steps)
    times = rounds(contenders, repeats)
    peak = peak_flops / min(times.pop("peak"))
    seconds = {name: statistics.median(t) for name, t in times.items()}
    chars = batch * seq * steps
    ours = chars / seconds["jax"]
    flops = ours * train_flops_per_char(hidden, layers, VOCAB)
    result = {
        "bench": "train", "device": jax.devices()[0].platform, "batch": batch, "seq": seq, "hidden": hidden,
        "layers": layers, "unroll": config.speed.unroll, "bf16": bf16, "chars_per_s": round(ours),
        "model_gflops": round(flops / 1e9, 1),
        "peak_gflops": round(peak / 1e9, 1), "utilisation": round(flops / peak, 3),
    }
    if "torch" in seconds:
        theirs = chars / seconds["torch"]
        result |= {"torch_chars_per_s": round(theirs), "ratio_vs_torch": round(ours / theirs, 3)}
    return result


def bench_sample(hidden=256, layers=2, chars=280, candidates=8, repeats=20, reference=True) -> dict:
    spec = resolve(chars=None, flags={"model": {"hidden": hidden, "layers": layers}}).model
    model = CharRNN(spec.config(VOCAB), rngs=nnx.Rngs(0))
    model.head.bias[...] = model.head.bias[...].at[EOS].set(-1e9)  # every candidate runs the full length
    vocab = Vocab(chars=tuple(chr(32 + i) for i in range(VOCAB - 4)))
    contenders = {"jax": lambda: generate(model, vocab, [""] * candidates, temperature=0.4, max_chars=chars)}
    if reference and torch_available():
        contenders["torch"] = torch_sample_round(hidden, layers, chars, candidates)
    for run in contenders.values():
        run()  # compile / warm up
    seconds = {name: statistics.median(t) for name, t in rounds(contenders, repeats).items()}
    result = {"bench": "sample", "device": jax.devices()[0].platform, "hidden": hidden, "layers": layers,
              "chars": chars, "candidates": candidates, "ms_per_generation": round(seconds["jax"] * 1000, 2)}
    if "torch" in seconds:
        result |= {"torch_ms": round(seconds["torch"] * 1000, 2),
                   "speedup_vs_torch": round(seconds["torch"] / seconds["jax"], 1)}
    return result


def bench_served(directory, chars=280, candidates=8, repeats=20) -> dict:
    """ms per text as served from the newest model in `directory` (its own size, the lexicon on),
    with the n-gram mixture and without it, timed in alternating rounds. Every candidate runs the
    full `chars` (<eos> is made impossible), so the two do the same number of steps."""
    found = load_latest(directory)
    if found.ngram is None:
        raise DannError(f"version {found.version} in {directory} has no n-gram mixture to measure")
    model = nnx.merge(*nnx.split(found.model))  # a copy: the bias change stays here
    model.head.bias[...] = model.head.bias[...].at[EOS].set(-1e9)
    run = lambda ngram: lambda: generate(model, found.vocab, [""] * candidates, temperature=0.7, max_chars=chars,
                                         lexicon=found.lexicon, ngram=ngram)
    contenders = {"served": run(found.ngram), "lstm_only": run(None)}
    for contender in contenders.values():
        contender()  # compile / warm up
    seconds = {name: statistics.median(t) for name, t in rounds(contenders, repeats).items()}
    return {"bench": "sample", "device": jax.devices()[0].platform, "served": str(directory),
            "version": found.version, "hidden": found.model.config.hidden, "layers": found.model.config.layers,
            "chars": chars, "candidates": candidates, "lexicon": found.lexicon is not None,
            "ngram_order": found.ngram.order, "ngram_mb": round(found.ngram.nbytes / 1e6, 1),
            "ms_per_text": round(seconds["served"] * 1000, 2),
            "ms_without_mixture": round(seconds["lstm_only"] * 1000, 2),
            "mixture_cost": round(seconds["served"] / seconds["lstm_only"], 3)}


def bench_why(directory, texts: int = 100, seed: int = 0) -> dict:
    """ms per "why?" lookup (dann/voice/why.py) on `texts` texts the newest model in `directory`
    writes as served (best of 8, the default filters), each looked up once after one warm-up."""
    voice = servable(Voice.of(load_latest(directory)))
    filters = Filters(Blocklist.default())
    requests = [GenerationRequest("post" if i % 2 else "reply", "", temperature=0.7, seed=seed + i) for i in range(texts)]
    (written, _) = answer(voice, requests, best_of=8, max_chars=280, filters=filters)
    explain(voice, written[0][0], filters)  # warm-up
    seconds = []
    for (text,) in written:
        start = time.perf_counter()
        explain(voice, text, filters)
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return {"bench": "why", "served": str(directory), "version": voice.version, "posts": len(voice.posts),
            "texts": texts, "ms_median": round(statistics.median(seconds) * 1000, 2),
            "ms_p95": round(seconds[int(0.95 * (len(seconds) - 1))] * 1000, 2),
            "ms_max": round(seconds[-1] * 1000, 2)}


def torch_sample_round(hidden: int, layers: int, chars: int, candidates: int):
    """The usual PyTorch sampler: a Python loop feeding one character at a time through nn.LSTM."""
    import torch

    device = torch_device()
    embed = torch.nn.Embedding(VOCAB, hidden).to(device)
    lstm = torch.nn.LSTM(hidden, hidden, layers, batch_first=True).to(device)
    head = torch.nn.Linear(hidden, VOCAB).to(device)

    @torch.no_grad()
    def run():
        token = torch.zeros(candidates, 1, dtype=torch.long, device=device)
        state = None
        for _ in range(chars):
            out, state = lstm(embed(token), state)
            probs = torch.softmax(head(out[:, -1]) / 0.4, dim=-1)
            token = torch.multinomial(probs, 1)
        token.cpu()  # wait for the GPU

    return run

