"""Building the engine a process runs, and running it until told to stop."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from datetime import timedelta
from functools import partial

import anyio

from reelforge.bus import Notice, Observer, Topic
from reelforge.providers.base import Provider
from reelforge.runtime import Runtime
from reelforge.services.housekeeping import Housekeeping
from reelforge.services.jobs import Jobs
from reelforge.services.upstream_limits import LimitedProvider, UpstreamLimits
from reelforge.worker.engine import Engine, EngineConfig, Every, worker_name
from reelforge.worker.steps import Steps

# How often outgoing webhooks that are due get sent.
DELIVERY_SECONDS = 2.0
# How often this worker tells /ready it is alive: well within the silence /ready allows.
HEARTBEAT_SECONDS = 15.0
# How often stale temporaries and long-deleted videos are cleaned up; both are cheap when idle.
HOUSEKEEPING_SECONDS = 60.0


def engine_for(
    runtime: Runtime,
    provider: Provider | Mapping[str, Provider],
    *,
    concurrency: int | None = None,
) -> Engine:
    settings = runtime.settings
    owner = worker_name()
    jobs = Jobs(runtime.database)
    providers = provider if isinstance(provider, Mapping) else {provider.name: provider}
    # Each vendor's own rate limit and 429 pauses, per provider (services/upstream_limits.py).
    limits = UpstreamLimits.from_settings(settings, runtime.redis, list(providers))
    steps = Steps(
        runtime.lifecycle,
        jobs,
        runtime.storage,
        {name: LimitedProvider(each, limits) for name, each in providers.items()},
        deadline=timedelta(minutes=settings.job_deadline_minutes),
        webhooks=settings.provider_webhook_secret is not None,
        limits=limits,
    )
    housekeeping = Housekeeping(
        runtime.database,
        runtime.storage,
        temporary_ttl=timedelta(minutes=settings.temporary_ttl_minutes),
        deleted_retention=timedelta(days=settings.deleted_retention_days),
    )
    engine = Engine(
        jobs,
        steps,
        config=EngineConfig(
            concurrency=concurrency or settings.worker_concurrency,
            lease=timedelta(seconds=settings.lease_seconds),
        ),
        owner=owner,
        periodic=[
            Every(HEARTBEAT_SECONDS, partial(runtime.heartbeats.beat, owner)),
            Every(DELIVERY_SECONDS, runtime.deliverer.deliver_due),
            Every(HOUSEKEEPING_SECONDS, housekeeping.remove_stale_temporaries),
            Every(HOUSEKEEPING_SECONDS, housekeeping.purge_deleted),
            Every(HOUSEKEEPING_SECONDS, housekeeping.prune_webhook_records),
        ],
    )
    runtime.bus.observe(woken_by(engine))
    return engine


def woken_by(engine: Engine) -> Observer:
    """A bus observer that wakes `engine` when any process says a job is due now, and when
    notices may have been lost (RESYNC): sooner than its idle poll, which still covers a
    notice that never came."""

    def take(notice: Notice) -> None:
        if notice.topic is Topic.WAKE:
            engine.wake(notice.id)
        elif notice.topic is Topic.RESYNC:
            engine.wake()

    return take


async def run_until_signalled(engine: Engine) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight steps within the engine's deadline."""
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    stopping.set()
                    engine.wake()
                    return

        group.start_soon(watch_signals)
        await engine.run(stopping)
        group.cancel_scope.cancel()
