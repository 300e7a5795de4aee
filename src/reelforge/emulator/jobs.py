"""The job engine: renders off the event loop, moves jobs queued → in_progress → done, evicts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from reelforge.emulator.assets import AssetStore
from reelforge.emulator.faults import fail_message
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.store import EmulatorClock, Job, JobStore, Status, sha256_hex
from reelforge.emulator.webhooks import Delivery, WebhookSender

log = logging.getLogger(__name__)


class EngineClosed(RuntimeError):
    """The engine was closed; it takes no more jobs."""


class RenderCancelled(Exception):
    """Raised from the progress callback to abandon a render nobody waits for any more."""


Renderer = Callable[[RenderSpec, Callable[[float], None] | None], RenderedAssets]


class Engine:
    """Owns a private event-loop thread and a bounded render pool.

    The engine does not borrow the server's event loop or lifespan: the emulator keeps working
    when mounted inside another app (mounted apps get no lifespan events), behind any ASGI
    server, and under test transports. Renders are CPU-bound and run in the pool, never on a
    loop.
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        store: JobStore,
        assets: AssetStore,
        clock: EmulatorClock,
        webhooks: WebhookSender,
        renderer: Renderer,
        drop_webhooks: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.store = store
        self.assets = assets
        self.clock = clock
        self.webhooks = webhooks
        self.renderer = renderer
        self.drop_webhooks = drop_webhooks
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise EngineClosed("the emulator engine is closed")
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.render_concurrency, thread_name_prefix="emulator-render"
            )
            self._thread = threading.Thread(target=run, name="emulator-engine", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        self._call(self._janitor())
        return loop

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` as a tracked task on the engine loop, from any thread."""
        try:
            loop = self._start()
        except EngineClosed:
            coroutine.close()  # never scheduled: close it so it is not reported as unawaited
            raise
        generation = self._generation

        def spawn() -> None:
            if generation != self._generation:
                coroutine.close()
                return
            task = loop.create_task(coroutine)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(spawn)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the engine loop and wait for it (cancelling tasks must happen there)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        done: Future[None] = Future()

        def call() -> None:
            try:
                fn()
                done.set_result(None)
            except BaseException as exc:  # pragma: no cover - handed back to the caller
                done.set_exception(exc)

        loop.call_soon_threadsafe(call)
        done.result(timeout=10)

    def cancel_all(self) -> None:
        """Forget every running job and webhook (used by reset)."""
        self._generation += 1
        self._on_loop(self._cancel_tasks)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread, pool = self._loop, self._thread, self._pool
        self._generation += 1
        if loop is not None:
            self._on_loop(self._cancel_tasks)
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        if loop is not None and not loop.is_running():
            loop.close()
        if pool is not None:
            # A running render stops at its next progress report (see `abandoned`).
            pool.shutdown(wait=False, cancel_futures=True)

    # --- jobs -----------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        self._call(self._run(job, self._generation))

    async def _run(self, job: Job, generation: int) -> None:
        try:
            if job.planned_failure is not None:
                await self._fail_after_latency(job)
            else:
                await self._render(job, generation)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("emulator: render of %s failed", job.id)
            self._finish_failed(job, "internal_error", fail_message("internal_error"))
        if generation != self._generation or self.store.get(job.id) is not job:
            return  # reset or deleted meanwhile: nobody is waiting for this job any more
        self.notify(job)

    def _begin(self, job: Job) -> None:
        with self.store.lock:
            if job.started_at is not None:
                return  # resumed after a restart: its latency runs from the first start
            job.status = Status.IN_PROGRESS
            job.started_at = time.time()
            self.store.save(job)

    async def _wait_latency(self, job: Job) -> None:
        assert job.started_at is not None
        remaining = job.latency_seconds - (time.time() - job.started_at)
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _fail_after_latency(self, job: Job) -> None:
        # Failures need no render slot: they surface after the job was seen in progress.
        job.render_fraction = 1.0
        self._begin(job)
        await self._wait_latency(job)
        assert job.planned_failure is not None
        self._finish_failed(job, job.planned_failure, fail_message(job.planned_failure))

    async def _render(self, job: Job, generation: int) -> None:
        loop = asyncio.get_running_loop()
        assert self._pool is not None

        def abandoned() -> bool:
            return generation != self._generation or self.store.get(job.id) is not job

        def progress(fraction: float) -> None:
            if abandoned():
                # Reset, close or eviction: stop encoding for nobody (the renderer unwinds).
                raise RenderCancelled
            job.render_fraction = max(job.render_fraction, min(1.0, max(0.0, float(fraction))))

        def work() -> RenderedAssets | None:
            if abandoned():
                return None
            self._begin(job)  # in progress only once a render slot is ours
            try:
                return self.renderer(job.spec, progress)
            except RenderCancelled:
                return None

        if job.render_fraction < 1.0 or not self.assets.has(job.id):
            assets = await loop.run_in_executor(self._pool, work)
            if assets is None:
                return
            # Stored and recorded as rendered at once: after a restart, only the rest of the
            # latency is left.
            self.assets.put(job.id, assets)
            with self.store.lock:
                job.render_fraction = 1.0
                job.asset_sizes = {
                    "video": len(assets.video),
                    "thumbnail": len(assets.thumbnail),
                    "spritesheet": len(assets.spritesheet),
                }
                job.asset_sha256 = {"video": sha256_hex(assets.video)}
                self.store.save(job)
        await self._wait_latency(job)
        if generation != self._generation or self.store.get(job.id) is not job:
            return
        now = int(self.clock.now())
        with self.store.lock:
            self.store.by_video_sha256[job.asset_sha256["video"]] = job.id
            job.status = Status.COMPLETED
            job.completed_at = now
            job.finished_at = now
            job.expires_at = now + job.ttl_seconds
            self.store.save(job)

    def _finish_failed(self, job: Job, code: str, message: str) -> None:
        with self.store.lock:
            job.failed_progress = job.progress() if job.status == Status.IN_PROGRESS else 0
            job.status = Status.FAILED
            job.error_code = code
            job.error_message = message
            # Failed jobs have no content; they stay listed as long as a completed one would.
            job.expires_at = None
            job.finished_at = int(self.clock.now())
            self.store.save(job)

    def notify(self, job: Job) -> None:
        """Send the finished `job`'s event; then the job is marked notified, so that one
        finished just before a restart gets its event after it."""
        if self.webhooks.enabled:
            event_type = "video.completed" if job.status == Status.COMPLETED else "video.failed"
            drop = job.tags.no_webhook or self.drop_webhooks()
            delivery = self.webhooks.prepare(event_type, job.id, int(self.clock.now()), drop=drop)
            self.redeliver(delivery)
        with self.store.lock:
            job.notified = True
            self.store.save(job)

    def redeliver(self, delivery: Delivery) -> None:
        """Deliver (or go on delivering, after a restart) `delivery`."""
        self._call(self.webhooks.deliver(delivery))

    # --- eviction -------------------------------------------------------------------------

    async def _janitor(self) -> None:
        while True:
            await asyncio.sleep(self.settings.janitor_interval_seconds)
            self.sweep()

    def sweep(self) -> int:
        """Drop jobs (and their assets) whose content expired more than the grace period ago."""
        now = self.clock.now()
        grace = self.settings.evict_after_seconds
        doomed: list[str] = []
        with self.store.lock:
            for job in self.store.jobs.values():
                if job.status == Status.COMPLETED and job.expires_at is not None:
                    deadline = job.expires_at + grace
                elif job.status == Status.FAILED and job.finished_at is not None:
                    deadline = job.finished_at + job.ttl_seconds + grace
                else:
                    continue
                if now >= deadline:
                    doomed.append(job.id)
            for video_id in doomed:
                self.store.remove(video_id, evicted=True)
        for video_id in doomed:
            self.assets.delete(video_id)
        return len(doomed)
