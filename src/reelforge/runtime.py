"""The composition root: builds the adapters (database, storage, Redis) that Settings choose."""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import anyio
from redis.asyncio import Redis

from reelforge.bus import Bus, LocalBus, RedisBus
from reelforge.db.engine import Database
from reelforge.domain.quotas import QuotaPolicy
from reelforge.domain.routing import Routes
from reelforge.providers.base import Provider
from reelforge.services.accounts import Accounts
from reelforge.services.admin import Admin
from reelforge.services.fal_webhooks import FalWebhooks
from reelforge.services.heartbeats import Heartbeats
from reelforge.services.inbound import InboundWebhooks
from reelforge.services.keys import ApiKeys
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.lineage import Lineages
from reelforge.services.links import FileLinks
from reelforge.services.quotas import Quotas
from reelforge.services.ratelimits import RateLimiter, limiter_storage
from reelforge.services.read_cache import ReadCache
from reelforge.services.sessions import Sessions
from reelforge.services.tokens import Tokens
from reelforge.services.upstream_calls import CountedProvider, UpstreamTally
from reelforge.services.videos import Videos
from reelforge.services.webhook_delivery import Deliverer
from reelforge.services.webhook_endpoints import Webhooks
from reelforge.settings import ProviderName, Settings
from reelforge.storage import Storage, open_storage
from reelforge.worker.engine import worker_name

Check = Callable[[], Awaitable[object]]


@dataclass
class Runtime:
    """Everything a process of Reelforge holds open, and how to ask each part if it is well."""

    settings: Settings
    database: Database
    storage: Storage
    accounts: Accounts
    keys: ApiKeys
    tokens: Tokens
    lifecycle: Lifecycle
    sessions: Sessions
    videos: Videos
    quotas: Quotas
    create_limiter: RateLimiter
    login_limiter: RateLimiter
    inbound: InboundWebhooks
    webhooks: Webhooks
    deliverer: Deliverer
    admin: Admin
    lineages: Lineages
    heartbeats: Heartbeats
    links: FileLinks
    upstream_calls: UpstreamTally
    bus: Bus
    cache: ReadCache = field(default_factory=ReadCache)
    redis: Redis | None = None
    provider: Provider | None = None
    """The default provider (the one requests that name no model go to)."""
    providers: dict[str, Provider] = field(default_factory=dict)
    """Every configured provider by name, the default included."""
    checks: dict[str, Check] = field(default_factory=dict)
    fal_webhooks: FalWebhooks | None = None
    """fal's signed webhooks (`POST /webhooks/fal`), when the fal provider is configured."""

    async def listen(self, stack: AsyncExitStack) -> None:
        """Carry other processes' bus notices to this one's subscribers and observers until
        `stack` closes."""
        tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tasks.cancel_scope.cancel)
        tasks.start_soon(self.bus.listen)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.upstream_calls.flush()
        await self.bus.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.close()


def open_runtime(
    settings: Settings,
    *,
    provider: Provider | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> Runtime:
    """Build the adapters; nothing connects until first use, so this cannot hang.

    Processes that talk to upstream (the server, workers) pass the `providers` (or the one
    `provider`); commands that only manage accounts don't need any. The runtime owns them.
    """
    configured = dict(providers or {})
    if provider is not None:
        configured.setdefault(provider.name, provider)
    default_name = (provider or next(iter(configured.values()))).name if configured else None
    routes = Routes.of(
        configured or [p.value for p in settings.enabled_providers],
        default=default_name or settings.provider.value,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
    # Every upstream call this process makes is counted for /metrics (services/upstream_calls).
    tally = UpstreamTally(database, worker_name())
    configured = {name: CountedProvider(each, tally) for name, each in configured.items()}
    default = configured[default_name] if default_name is not None else None
    storage = open_storage(
        settings.resolved_storage_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=(
            settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None
        ),
    )
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    bus = RedisBus(redis, f"{settings.redis_key_prefix}:bus") if redis else LocalBus()
    cache = read_cache(database, bus, redis)
    accounts = Accounts(database, quota=default_quota(settings), cache=cache, bus=bus)
    lifecycle = Lifecycle(database, bus)
    secret = secret_key(settings)
    tokens = Tokens(secret, timedelta(minutes=settings.token_ttl_minutes))
    runtime = Runtime(
        settings=settings,
        database=database,
        storage=storage,
        accounts=accounts,
        keys=ApiKeys(database, bus, cache=cache),
        tokens=tokens,
        lifecycle=lifecycle,
        sessions=Sessions(database, tokens, cache=cache, bus=bus),
        videos=Videos(
            database,
            storage,
            routes,
            lifecycle,
            max_prompt_length=settings.max_prompt_length,
            cache=cache,
        ),
        quotas=Quotas(database),
        create_limiter=RateLimiter(
            settings.create_rate_limit,
            limiter_storage(redis, settings.redis_key_prefix),
            scope="create",
        ),
        login_limiter=RateLimiter(
            settings.login_rate_limit,
            limiter_storage(redis, settings.redis_key_prefix),
            scope="login",
        ),
        inbound=InboundWebhooks(
            database,
            bus,
            provider=settings.provider.value,
            secret=(
                settings.provider_webhook_secret.get_secret_value()
                if settings.provider_webhook_secret
                else None
            ),
        ),
        webhooks=Webhooks(
            database, allow_private_addresses=settings.webhook_allow_private_addresses
        ),
        deliverer=Deliverer(
            database, allow_private_addresses=settings.webhook_allow_private_addresses
        ),
        admin=Admin(database, accounts),
        lineages=Lineages(database),
        heartbeats=Heartbeats(database, on_beat=tally.flush),
        upstream_calls=tally,
        links=FileLinks(secret, timedelta(minutes=settings.signed_url_ttl_minutes)),
        bus=bus,
        cache=cache,
        redis=redis,
        provider=default,
        providers=configured,
    )
    if ProviderName.FAL in settings.enabled_providers:
        runtime.fal_webhooks = FalWebhooks(runtime.inbound, jwks_url=settings.fal_jwks_url)
    runtime.checks["database"] = database.ping
    runtime.checks["storage"] = storage.check
    if redis is not None:
        runtime.checks["redis"] = redis.ping
    for name, each in configured.items():
        # Every provider's health on /ready: the default under its old name, the others by theirs.
        runtime.checks["provider" if each is default else f"provider:{name}"] = each.check
    if not settings.embedded_worker and settings.worker_silence_seconds is not None:
        silence = timedelta(seconds=settings.worker_silence_seconds)
        runtime.checks["workers"] = lambda: runtime.heartbeats.check(silence)
    return runtime


def read_cache(database: Database, bus: Bus, redis: Redis | None) -> ReadCache:
    """SQLite in a file answers for every process's commits itself; otherwise the Redis bus
    does; PostgreSQL alone keeps nothing in memory (services/read_cache.py)."""
    probe = database.commit_probe()
    if probe is not None:
        cache = ReadCache(probe=probe)
    elif redis is not None:
        cache = ReadCache(caught_up=bus.caught_up)
    else:
        return ReadCache()
    bus.observe(cache.take)
    return cache


def default_quota(settings: Settings) -> QuotaPolicy:
    return QuotaPolicy(
        max_videos=settings.default_video_quota,
        period_days=settings.default_quota_period_days,
        monthly_budget=settings.default_monthly_budget,
    )


def secret_key(settings: Settings) -> str:
    """The configured secret key, or the one generated once into the data directory."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.data_dir / "secret_key"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def _write_private(path: Path, content: str) -> None:
    # Written aside, then linked into place: a process starting at the same moment sees either
    # no file or the whole key, and the second link loses (FileExistsError) to the first.
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
