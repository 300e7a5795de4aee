"""Users and their credentials as rules: roles, what an email and a password must look like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reelforge.domain.errors import InputError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# Deliberately loose: a self-hosted install may well use `admin@localhost`.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Account:
    """A user as every layer above the database sees one."""

    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class KeyInfo:
    """An API key without its secret: what lists show."""

    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.fullmatch(cleaned):
        raise InputError("email", "must look like name@domain")
    return cleaned


def check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InputError(
            "password",
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long",
        )
    return password


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InputError("role", "must be 'user' or 'admin'") from None
