"""The create rate limit as a dependency: 429 with Retry-After and RateLimit headers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from reelforge.api.auth import CurrentAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.errors import ApiError
from reelforge.services.ratelimits import RateDecision


def _headers(decision: RateDecision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.retry_after),
    }


async def limit_creates(
    request: Request, response: Response, account: CurrentAccount, runtime: RuntimeDep
) -> None:
    identities = [f"user:{account.id}"]
    prefix = getattr(request.state, "api_key_prefix", None)
    if prefix is not None:
        identities.append(f"key:{prefix}")
    decision = await runtime.create_limiter.hit(*identities)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limit_exceeded",
            f"Too many creates: {decision.limit} allowed per window; retry in "
            f"{decision.retry_after} s",
            headers={**_headers(decision), "Retry-After": str(decision.retry_after)},
        )
    response.headers.update(_headers(decision))


CreateRateLimit = Annotated[None, Depends(limit_creates)]
