"""The composition root: builds the adapters (database, storage, Redis) that Settings choose."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from reelforge.db.engine import Database
from reelforge.settings import Settings
from reelforge.storage import Storage, open_storage

Check = Callable[[], Awaitable[object]]


@dataclass
class Runtime:
    """Everything a process of Reelforge holds open, and how to ask each part if it is well."""

    settings: Settings
    database: Database
    storage: Storage
    redis: Redis | None = None
    checks: dict[str, Check] = field(default_factory=dict)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.close()


def open_runtime(settings: Settings) -> Runtime:
    """Build the adapters; nothing connects until first use, so this cannot hang."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
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
    runtime = Runtime(settings=settings, database=database, storage=storage, redis=redis)
    runtime.checks["database"] = database.ping
    runtime.checks["storage"] = storage.check
    if redis is not None:
        runtime.checks["redis"] = redis.ping
    return runtime
