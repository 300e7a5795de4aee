"""Builds the Storage a storage URL names: file://, s3:// or memory://."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from obstore.store import LocalStore, MemoryStore, S3Store

from reelforge.storage.objects import Storage

if TYPE_CHECKING:
    from obstore.store import S3Config


def open_storage(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
) -> Storage:
    """The store behind `url`; nothing is contacted until the first operation."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        root = Path(unquote(parts.path))
        return Storage(LocalStore(root, mkdir=True), url=url)
    if parts.scheme == "memory":
        return Storage(MemoryStore(), url=url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket (expected s3://bucket/prefix)")
        # Unset values stay out so obstore can still find credentials the usual AWS ways.
        config: S3Config = {"region": s3_region}
        if s3_endpoint_url:
            config["endpoint"] = s3_endpoint_url
        if s3_access_key_id:
            config["access_key_id"] = s3_access_key_id
        if s3_secret_access_key:
            config["secret_access_key"] = s3_secret_access_key
        store = S3Store(
            parts.netloc,
            prefix=parts.path.strip("/") or None,
            config=config,
            client_options={"allow_http": True},
        )
        return Storage(store, url=url)
    raise ValueError(f"storage URL {url!r} must start with file://, s3:// or memory://")
