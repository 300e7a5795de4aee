"""The create rate limit as a dependency: 429 with Retry-After and RateLimit headers.

The dependency only says who is counted; the count itself happens when the service calls the
`Admit` it returns, once the request has passed every check, so a create refused as invalid
uses up no slot of the limit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from reelforge.api.auth import CurrentAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.errors import ApiError
from reelforge.services.ratelimits import RateDecision
from reelforge.services.videos import Admit

# The longest wait a client's automatic retry should sit through: the SDKs honour any
# Retry-After (the Node SDK without a cap), so a longer one (a daily limit) also says
# `x-should-retry: false`, and the caller decides when to try again.
MAX_RETRY_WAIT_SECONDS = 60


def _headers(decision: RateDecision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.retry_after),
    }


async def create_admission(
    request: Request, response: Response, account: CurrentAccount, runtime: RuntimeDep
) -> Admit:
    identities = [f"user:{account.id}"]
    prefix = getattr(request.state, "api_key_prefix", None)
    if prefix is not None:
        identities.append(f"key:{prefix}")

    async def admit() -> None:
        decision = await runtime.create_limiter.hit(*identities)
        if not decision.allowed:
            wait = decision.retry_after
            headers = {**_headers(decision), "Retry-After": str(wait)}
            if wait > MAX_RETRY_WAIT_SECONDS:
                headers["x-should-retry"] = "false"
            raise ApiError(
                429,
                "rate_limit_exceeded",
                f"Too many creates: {decision.limit} allowed per window; retry in {wait} s",
                headers=headers,
            )
        response.headers.update(_headers(decision))

    return admit


CreateRateLimit = Annotated[Admit, Depends(create_admission)]
