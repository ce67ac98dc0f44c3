"""The generation service: one model, hot-reloaded, with requests batched into shared sampler calls.

The Discord bot and the web page both talk to this; neither loads a model or samples by itself.
Requests are `GenerationRequest`s (dann/serving/request.py); best-of-n picks each text served.

- Requests queue up; a worker takes every request that arrives within `batch_window_s` of the
  first (up to `max_batch` rows) and runs them as one call of the jitted batch sampler.
- The sampler runs on one dedicated thread, off the event loop: XLA releases the GIL, so the
  loop (and Discord's heartbeat) keeps running while the model samples.
- A poll task checks the checkpoint directory every `poll_s`; a newer version is loaded on another
  thread and swapped in with one assignment, so requests never see a half-loaded model. A version
  that fails to load is logged once and the current model stays; that version is not tried again
  (orbax publishes versions atomically, so a broken one stays broken), a newer one is.
"""

import asyncio
import dataclasses
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from dann.serving import status
from dann.serving.bestof import Tally, Voice, answer
from dann.serving.filters import Filters, filters_for
from dann.serving.request import GenerationRequest
from lstm import checkpoint
from lstm.errors import DannError
from lstm.sample import generate

log = logging.getLogger("dann.service")


def settle_garbage_collector() -> None:
    """Collect once now, then exempt every object alive from later collections.

    A full collection walks every tracked object while holding the GIL: with jax, flax and orbax
    loaded that takes a noticeable pause (docs/measurements.md), and the event loop (Discord's
    heartbeat, the web page) waits it out. Once the model is loaded, almost all of those objects
    live as long as the process, so they are frozen and later collections only walk what came after. This one collection is the
    same pause, but once per model load instead of whenever the collector decides. Unfreezing
    first lets it free the model just replaced, if a reference cycle holds it."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class NotReady(DannError):
    """No model has been trained yet."""


@dataclasses.dataclass
class Pending:
    request: GenerationRequest  # its seed already chosen
    future: asyncio.Future


@dataclasses.dataclass
class Generation:
    texts: list[str]
    model_version: int
    ms: float  # from the request's arrival to its answer, queueing included


def service_for(settings) -> "GenerationService":
    """The service as the settings configure it, with their filters (dann/serving/filters.py)."""
    return GenerationService(settings.checkpoint_dir, max_chars=settings.max_chars, best_of=settings.best_of,
                             poll_s=settings.reload_poll_s, filters=filters_for(settings),
                             known_words=settings.known_words)


class GenerationService:
    def __init__(self, checkpoint_dir, *, max_chars: int = 280, best_of: int = 8, max_batch: int = 32,
                 batch_window_s: float = 0.02, poll_s: float = 10.0, filters: Filters | None = None,
                 known_words: bool = True):
        self.checkpoint_dir = checkpoint_dir
        self.known_words = known_words  # spell from the version's lexicon (lstm/lexicon.py)
        self.filters = filters  # the blocklist and the forget list, checked besides the copy index
        self.max_chars = max_chars
        self.best_of = best_of  # candidates sampled per text served (dann/serving/bestof.py)
        self.max_batch = max_batch  # texts per sampler call, so best_of * max_batch rows at most
        self.batch_window_s = batch_window_s
        self.poll_s = poll_s
        self.current: Voice | None = None
        self.batches = 0  # sampler calls made, and the requests they served: shared batching shows here
        self.requests_served = 0
        self.tally = Tally()  # what best-of-n rejected, since this service started
        self._queue: asyncio.Queue[Pending] | None = None
        self._tasks: list[asyncio.Task] = []
        self._failed: set[int] = set()  # versions that did not load: logged once, not retried
        self._sampler = ThreadPoolExecutor(1, thread_name_prefix="dann-sampler")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="dann-loader")

    # --- model -------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the newest loadable version if it is newer than the current one. Blocking; returns
        whether the model changed. Never raises for a bad checkpoint: the current model stays."""
        serving = self.current.version if self.current else -1
        candidates = [v for v in checkpoint.versions(self.checkpoint_dir) if v > serving and v not in self._failed]
        for version in candidates:  # newest first
            try:
                fresh = Voice.of(checkpoint.load_version(self.checkpoint_dir, version), self.known_words)
                # Compile (and try) the shape of one request before serving it.
                generate(fresh.model, fresh.vocab, [""] * self.best_of, max_chars=self.max_chars,
                         lexicon=fresh.lexicon)
            except Exception as error:  # noqa: BLE001 - any damage: missing item, bad JSON, wrong shapes, a model that cannot run
                self._failed.add(version)
                reason = (str(error).strip().splitlines() or [""])[0][:300]
                log.warning("model version %d in %s failed to load (%s: %s); %s", version, self.checkpoint_dir,
                            type(error).__name__, reason,
                            f"still serving version {serving}" if serving >= 0 else "no model to serve yet")
                continue
            self.current = fresh  # one assignment: requests see the old model or the new one, never half
            settle_garbage_collector()
            log.info("serving model version %d (val loss %.3f)", fresh.version, fresh.record.val_loss)
            return True
        return False

    def status(self) -> dict | None:
        """What the front ends show about the served model, or None before the first one."""
        current = self.current  # read once: a swap in between must not mix two versions' facts
        if current is None:
            return None
        return {**status.summary(current), "best_of": self.best_of, "candidates": self.tally.as_dict()}

    # --- running -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        """Load the model (if there is one yet) and start the batch worker and the poller. Starting
        a running service does nothing, so two front ends in one process can share it."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        await loop.run_in_executor(self._loader, self.reload)
        self._tasks = [asyncio.create_task(self._worker()), asyncio.create_task(self._poll())]

    async def stop(self) -> None:
        """Stop the worker and the poller. Requests still waiting fail instead of waiting forever."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            self._fail([queue.get_nowait()], RuntimeError("the generation service stopped"))

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await loop.run_in_executor(self._loader, self.reload)
            except Exception:  # keep polling whatever happens; the next poll may succeed
                log.exception("checking %s for a new model failed", self.checkpoint_dir)

    async def generate(self, request: GenerationRequest) -> Generation:
        """`request.n` texts that begin with its prompt. Raises NotReady before the first model exists."""
        if self.current is None:
            raise NotReady("dann is still learning: no model has been trained yet")
        if self._queue is None:
            raise RuntimeError("call start() first")
        future = asyncio.get_running_loop().create_future()
        if request.seed is None:
            request = dataclasses.replace(request, seed=time.time_ns() % 2**31)
        began = time.perf_counter()
        await self._queue.put(Pending(request, future))
        texts, version = await future
        return Generation(texts, version, round((time.perf_counter() - began) * 1000, 1))

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            try:
                deadline = loop.time() + self.batch_window_s
                while sum(p.request.n for p in batch) < self.max_batch:
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), deadline - loop.time()))
                    except TimeoutError:
                        break
                results = await loop.run_in_executor(self._sampler, self._sample, batch)
            except asyncio.CancelledError:  # stop(): nobody will answer the requests taken so far
                self._fail(batch, RuntimeError("the generation service stopped"))
                raise
            except Exception as error:
                log.exception("generation failed for a batch of %d requests", len(batch))
                self._fail(batch, error)
                continue
            for pending, result in zip(batch, results):
                if not pending.future.done():  # the asker may have given up (a cancelled request)
                    pending.future.set_result(result)

    @staticmethod
    def _fail(batch: list[Pending], error: Exception) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    def _sample(self, batch: list[Pending]) -> list[tuple[list[str], int]]:
        """One sampler call for every candidate of every text of every request in the batch. Runs
        on the sampler thread."""
        voice = self.current  # read once: a swap during this call does not mix two models
        texts, tally = answer(voice, [p.request for p in batch], best_of=self.best_of, max_chars=self.max_chars,
                              filters=self.filters)
        self.tally.add(tally)
        self.batches += 1
        self.requests_served += len(batch)
        return [(t, voice.version) for t in texts]
