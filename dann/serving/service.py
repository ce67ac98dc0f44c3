"""The generation service: one model, hot-reloaded, with requests batched into shared sampler calls.

The Discord bot and the web page both talk to this; neither loads a model or samples by itself.
Requests are `GenerationRequest`s (dann/voice/request.py); best-of-n picks each text served.

- Admission: a request is refused at once (Busy) when the candidate rows already waiting would
  pass `max_pending_rows`, or when the queue would not drain before its deadline. An admitted
  request that is still waiting at its deadline is failed (TooLate) without being sampled, and one
  whose asker gave up (a cancelled call: a web client that left) is taken out of the queue.
- The queue is fair: requests wait per client, and the worker takes one request per client in
  turn, so one client's many n=8 requests cannot starve everyone else. It takes up to `max_batch`
  texts within `batch_window_s` of the first and runs them as one call of the jitted batch sampler.
- The sampler runs on one dedicated thread, off the event loop: XLA releases the GIL, so the
  loop (and Discord's heartbeat) keeps running while the model samples.
- A poll task checks the checkpoint directory every `poll_s`; a newer version is loaded on another
  thread and swapped in with one assignment, so requests never see a half-loaded model. A version
  that fails to load is logged and the current model stays; it is tried again after 30 s, then
  after twice as long each time (up to an hour), since the cause may pass (a disk that was full).
"""

import asyncio
import collections
import dataclasses
import gc
import logging
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from dann.serving import status
from dann.state.bucket import Bucket, bucket_for
from dann.voice.bestof import Tally, Voice, answer, servable
from dann.voice.filters import Filters, filters_for
from dann.voice.request import GenerationRequest, RequestError
from dann.voice.why import Explanation, explain
from lstm import checkpoint
from lstm.errors import DannError
from lstm.sample import generate

log = logging.getLogger("dann.service")

# A version that failed to load is tried again after 30 s, then twice as long each time, up to an hour.
RETRY_FIRST_S, RETRY_MAX_S = 30.0, 3600.0
SWITCH_INTERVAL_S = 0.0005


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


class Busy(DannError):
    """More is waiting than the service takes on, or the answer would come after its deadline.
    `retry_after` is the service's guess, in seconds, of when asking again would be admitted."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class TooLate(Busy):
    """An admitted request whose deadline passed before its answer was ready."""


@dataclasses.dataclass(eq=False)  # compared by identity: a withdrawn request is found by `is`
class Pending:
    request: GenerationRequest  # its seed already chosen
    future: asyncio.Future
    client: str  # whose turn it takes in the fair queue
    deadline: float  # the event loop's clock: past it, the request is dropped, not sampled
    rows: int  # candidate rows it costs: n texts times best_of


@dataclasses.dataclass
class Generation:
    texts: list[str]
    model_version: int
    ms: float  # from the request's arrival to its answer, queueing included


def service_for(settings) -> "GenerationService":
    """The service as the settings configure it, with their filters (dann/voice/filters.py)."""
    return GenerationService(settings.checkpoint_dir, bucket=bucket_for(settings),
                             max_chars=settings.max_chars, best_of=settings.best_of,
                             poll_s=settings.reload_poll_s, filters=filters_for(settings),
                             known_words=settings.known_words, max_pending_rows=settings.max_pending_rows,
                             deadline_s=settings.request_deadline_s)


class GenerationService:
    def __init__(self, checkpoint_dir, *, max_chars: int = 280, best_of: int = 8, max_batch: int = 32,
                 batch_window_s: float = 0.02, poll_s: float = 10.0, filters: Filters | None = None,
                 known_words: bool = True, max_pending_rows: int = 1024, deadline_s: float = 30.0,
                 bucket: Bucket | None = None):
        self.checkpoint_dir = checkpoint_dir
        self.bucket = bucket  # checkpoints published to a bucket, mirrored into checkpoint_dir
        self.known_words = known_words  # spell from the version's lexicon (lstm/lexicon.py)
        self.filters = filters  # the blocklist and the forget list, checked besides the copy index
        self.max_chars = max_chars
        self.best_of = best_of  # candidates sampled per text served (dann/voice/bestof.py)
        self.max_batch = max_batch  # texts per sampler call, so best_of * max_batch rows at most
        self.batch_window_s = batch_window_s
        self.poll_s = poll_s
        # Admission: candidate rows that may wait at once (beyond it, Busy), and how long a request
        # may take from arrival to answer unless its asker gives a shorter deadline.
        self.max_pending_rows = max_pending_rows
        self.deadline_s = deadline_s
        self.current: Voice | None = None
        self.batches = 0  # sampler calls made, and the requests they served: shared batching shows here
        self.requests_served = 0
        # Requests never sampled: refused at the door, given up by their asker (a web client that
        # left, a cancelled call), or past their deadline when their turn came.
        self.refused = self.withdrawn = self.expired = 0
        self.tally = Tally()  # what best-of-n rejected, since this service started
        # The fair queue: each client's requests in arrival order, and the clients in turn order.
        # The worker takes one request from the client at the front and sends that client to the
        # back, so a client with many requests waiting gets one turn per round like everyone else.
        self._waiting: collections.OrderedDict[str, collections.deque[Pending]] = collections.OrderedDict()
        self._pending_rows = 0
        self._work: asyncio.Event | None = None
        self._call_s = 0.0  # a moving average of one sampler call's seconds, for Retry-After
        self._shapes: set[int] = set()  # padded row counts sampled so far (compiled)
        self._tasks: list[asyncio.Task] = []
        # Versions that did not load, and when each may be tried again: a file still being copied
        # in, or a disk that was full, may be fine later, so a failure is retried with backoff.
        self._failed: dict[int, tuple[int, float]] = {}  # version -> (failures, monotonic time of next try)
        self._sampler = ThreadPoolExecutor(1, thread_name_prefix="dann-sampler")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="dann-loader")

    # --- model -------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the newest loadable version if it is newer than the current one. Blocking; returns
        whether the model changed. Never raises for a bad checkpoint: the current model stays."""
        if self.bucket is not None:
            self.bucket.refresh()  # a bucket out of reach is logged and retried later; the cache still serves
        serving = self.current.version if self.current else -1
        now = time.monotonic()
        candidates = [v for v in checkpoint.versions(self.checkpoint_dir)
                      if v > serving and self._failed.get(v, (0, 0.0))[1] <= now]
        for version in candidates:  # newest first
            try:
                fresh = servable(Voice.of(checkpoint.load_version(self.checkpoint_dir, version), self.known_words))
                # Compile (and try) the shape of one request before serving it.
                generate(fresh.model, fresh.vocab, [""] * self.best_of, max_chars=self.max_chars,
                         lexicon=fresh.lexicon, ngram=fresh.ngram)
            except Exception as error:  # noqa: BLE001 - any damage: missing item, bad JSON, wrong shapes, a model that cannot run
                failures = self._failed.get(version, (0, 0.0))[0] + 1
                retry_s = min(RETRY_FIRST_S * 2 ** (failures - 1), RETRY_MAX_S)
                self._failed[version] = (failures, now + retry_s)
                reason = (str(error).strip().splitlines() or [""])[0][:300]
                log.warning("model version %d in %s failed to load (%s: %s); %s; trying it again in %.0f s",
                            version, self.checkpoint_dir, type(error).__name__, reason,
                            f"still serving version {serving}" if serving >= 0 else "no model to serve yet", retry_s)
                continue
            self.current = fresh  # one assignment: requests see the old model or the new one, never half
            self._failed = {v: f for v, f in self._failed.items() if v > version}  # older ones are moot now
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

    def load(self) -> dict:
        """How busy the service is: for /healthz and the load test (docs/serving.md)."""
        return {"pending_rows": self._pending_rows, "max_pending_rows": self.max_pending_rows,
                "waiting_clients": len(self._waiting), "deadline_s": self.deadline_s,
                "served": self.requests_served, "batches": self.batches, "refused": self.refused,
                "withdrawn": self.withdrawn, "expired": self.expired}

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
        # The event loop's thread gives up the GIL at every socket call, and the sampler thread (best-of
        # scoring in Python between XLA calls) takes it; getting it back waits out the switch interval.
        # Under a burst of requests a shorter interval lets both threads keep moving: more of the
        # burst is admitted and answered in the same time (docs/serving.md#under-load).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._work = asyncio.Event()
        await loop.run_in_executor(self._loader, self.reload)
        self._tasks = [asyncio.create_task(self._worker()), asyncio.create_task(self._poll())]

    async def stop(self) -> None:
        """Stop the worker and the poller. Requests still waiting fail instead of waiting forever."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks, self._work = [], None
        waiting = [p for queue in self._waiting.values() for p in queue]
        self._waiting.clear()
        self._pending_rows = 0
        self._fail(waiting, RuntimeError("the generation service stopped"))

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await loop.run_in_executor(self._loader, self.reload)
            except Exception:  # keep polling whatever happens; the next poll may succeed
                log.exception("checking %s for a new model failed", self.checkpoint_dir)

    def expected_wait(self, rows: int = 0) -> float:
        """Seconds until what waits now, plus `rows` more, has been sampled, at the recent calls' pace."""
        return math.ceil((self._pending_rows + rows) / (self.max_batch * self.best_of)) * self._call_s

    def admits(self, rows: int, deadline_s: float | None = None) -> bool:
        """Whether `rows` more candidate rows fit in the queue and would be sampled in time."""
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        return self._pending_rows + rows <= self.max_pending_rows and self.expected_wait(rows) <= deadline_s

    def retry_after(self) -> float:
        """When asking again would likely be admitted: once what waits now has drained (at least 1 s)."""
        return max(1.0, self.expected_wait())

    async def generate(self, request: GenerationRequest, *, client: str = "", deadline_s: float | None = None
                       ) -> Generation:
        """`request.n` texts that begin with its prompt. `client` names the asker for fair queueing
        (a web client's address, a Discord user); `deadline_s` shortens the service's deadline.

        Raises NotReady before the first model exists, Busy when the queue is full or the wait
        would pass the deadline, and TooLate when the deadline passes while waiting. Cancelling
        the call (a web client that left) withdraws the request before it is sampled."""
        if self.current is None:
            raise NotReady("dann is still learning: no model has been trained yet")
        if self._work is None:
            raise RuntimeError("call start() first")
        if self.filters is not None and (why := self.filters.refusal(request)):
            raise RequestError(why)
        loop = asyncio.get_running_loop()
        deadline_s = self.deadline_s if deadline_s is None else min(deadline_s, self.deadline_s)
        rows = request.n * self.best_of
        if deadline_s <= 0:  # already too late (an interaction Discord no longer takes answers for)
            self.expired += 1
            raise TooLate("dann could not answer in time; try again in a little while", self.retry_after())
        if not self.admits(rows, deadline_s):
            self.refused += 1
            raise Busy("dann is busy: too many people are asking at once; try again in a few seconds",
                       self.retry_after())
        if request.seed is None:
            request = dataclasses.replace(request, seed=time.time_ns() % 2**31)
        began = time.perf_counter()
        pending = Pending(request, loop.create_future(), client, loop.time() + deadline_s, rows)
        self._waiting.setdefault(client, collections.deque()).append(pending)
        self._pending_rows += rows
        self._work.set()
        try:
            async with asyncio.timeout_at(pending.deadline):
                texts, version = await pending.future
        except TimeoutError:
            raise TooLate(f"dann could not answer within {deadline_s:g} s; try again in a little while",
                          self.retry_after()) from None
        finally:
            if self._withdraw(pending):
                self.withdrawn += 1
        return Generation(texts, version, round((time.perf_counter() - began) * 1000, 1))

    async def why(self, text: str) -> Explanation:
        """The real posts the served model's `text` is closest to (dann/voice/why.py): a lookup in
        the version's post index, off the event loop. Raises NotReady before the first model and
        NoPostIndex for a version published without its posts."""
        current = self.current  # read once: a swap meanwhile must not mix two versions
        if current is None:
            raise NotReady("dann is still learning: no model has been trained yet")
        return await asyncio.to_thread(explain, current, text, self.filters)

    def _withdraw(self, pending: Pending) -> bool:
        """Take a request out of the queue if it is still there (its asker gave up or timed out)."""
        queue = self._waiting.get(pending.client)
        if queue is None or not any(p is pending for p in queue):
            return False
        queue.remove(pending)
        if not queue:
            del self._waiting[pending.client]
        self._pending_rows -= pending.rows
        return True

    def _take(self, now: float) -> list[Pending]:
        """The next batch: one request per client in turn, up to max_batch texts. Requests past
        their deadline are failed here, before anything is spent on them."""
        batch, texts = [], 0
        while self._waiting:
            client, queue = next(iter(self._waiting.items()))
            pending = queue[0]
            if pending.deadline > now and batch and texts + pending.request.n > self.max_batch:
                break  # it would make a bigger (uncompiled) shape: it is first in the next batch
            queue.popleft()
            self._pending_rows -= pending.rows
            if queue:
                self._waiting.move_to_end(client)
            else:
                del self._waiting[client]
            if pending.future.done():
                continue
            if pending.deadline <= now:
                self.expired += 1
                pending.future.set_exception(TooLate("dann could not answer in time; try again in a little while",
                                                     self.retry_after()))
                continue
            batch.append(pending)
            texts += pending.request.n
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._work.wait()
            batch: list[Pending] = []
            try:
                # Requests that arrive within the window share the call.
                if self._pending_rows // self.best_of < self.max_batch:  # texts waiting
                    await asyncio.sleep(self.batch_window_s)
                batch = self._take(loop.time())
                if not self._waiting:
                    self._work.clear()
                if not batch:
                    continue
                began = time.perf_counter()
                results = await loop.run_in_executor(self._sampler, self._sample, batch)
                took = time.perf_counter() - began
                # The sampler pads rows to a power of two; a shape's first call includes its compile
                # (seconds), which says nothing about the pace of the next calls.
                shape = 1 << (sum(p.rows for p in batch) - 1).bit_length()
                if shape in self._shapes:
                    self._call_s = took if not self._call_s else 0.8 * self._call_s + 0.2 * took
                self._shapes.add(shape)
            except asyncio.CancelledError:  # stop(): nobody will answer the requests taken so far
                self._fail(batch, RuntimeError("the generation service stopped"))
                raise
            except Exception as error:
                log.exception("generation failed for a batch of %d requests", len(batch))
                self._fail(batch, error)
                continue
            for pending, result in zip(batch, results, strict=True):
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
