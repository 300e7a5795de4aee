"""Cheap password hashing for tests: they check behaviour, not argon2's cost."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

FAST_HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
PASSWORD = "correct horse battery"
