"""Object storage for the archive (local directory, S3-compatible bucket or memory), on obstore."""

from reelforge.storage.keys import InvalidKeyError, validate_key
from reelforge.storage.objects import (
    TEMPORARY_PREFIX,
    IntegrityError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStream,
    Storage,
    StorageError,
    StorageFullError,
    StoredObject,
)
from reelforge.storage.open import open_storage

__all__ = [
    "TEMPORARY_PREFIX",
    "IntegrityError",
    "InvalidKeyError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStream",
    "Storage",
    "StorageError",
    "StorageFullError",
    "StoredObject",
    "open_storage",
    "validate_key",
]
