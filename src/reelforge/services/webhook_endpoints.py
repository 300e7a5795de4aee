"""Users' outgoing webhook endpoints, and the deliveries made to them (list, replay)."""

from __future__ import annotations

import base64
import secrets

from reelforge.db import webhooks as queries
from reelforge.db.engine import Database
from reelforge.db.models import WebhookEndpoint
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.ids import new_id
from reelforge.domain.webhooks import (
    MAX_DELIVERY_LIST,
    MAX_ENDPOINTS_PER_USER,
    DeliveryView,
    EndpointView,
    check_delivery_status,
    check_description,
    check_event_types,
    check_url,
)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Webhooks:
    """A user's endpoints and the deliveries made to them."""

    def __init__(self, database: Database, *, allow_private_addresses: bool = False) -> None:
        self._database = database
        self._allow_private_addresses = allow_private_addresses

    async def create_endpoint(
        self,
        account: Account,
        url: object,
        *,
        description: object = "",
        event_types: list[object] | None = None,
    ) -> tuple[EndpointView, str]:
        """A new endpoint, and its signing secret (returned only here)."""
        checked_url = check_url(url, allow_private_addresses=self._allow_private_addresses)
        checked_description = check_description(description)
        kinds = check_event_types(event_types)
        secret = new_secret()
        endpoint = WebhookEndpoint(
            id=new_id("whep"),
            user_id=account.id,
            url=checked_url,
            description=checked_description,
            secret=secret,
            event_types=[kind.value for kind in kinds],
            enabled=True,
            created_at=utcnow(),
        )
        if not await queries.add_endpoint(self._database, endpoint, limit=MAX_ENDPOINTS_PER_USER):
            raise ConflictError(
                f"at most {MAX_ENDPOINTS_PER_USER} webhook endpoints per user; delete one first"
            )
        return queries.endpoint_view(endpoint), secret

    async def endpoints(self, account: Account) -> list[EndpointView]:
        return await queries.endpoints_of(self._database, account.id)

    async def delete_endpoint(self, account: Account, endpoint_id: str) -> EndpointView:
        """Remove an endpoint and its deliveries; another user's endpoint is not found."""
        deleted = await queries.delete_endpoint(self._database, account.id, endpoint_id)
        if deleted is None:
            raise NotFoundError("webhook endpoint", endpoint_id)
        return deleted

    async def deliveries(
        self,
        account: Account,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[DeliveryView]:
        """The caller's deliveries, newest first."""
        if not 1 <= limit <= MAX_DELIVERY_LIST:
            raise InputError("limit", f"must be 1 to {MAX_DELIVERY_LIST}")
        wanted = check_delivery_status(status)
        return await queries.deliveries_of(
            self._database, account.id, endpoint_id=endpoint_id, status=wanted, limit=limit
        )

    async def replay(self, account: Account, delivery_id: str) -> DeliveryView:
        """Queue a delivery to be sent again now, whatever became of it; attempts are kept."""
        replayed = await queries.replay(self._database, account.id, delivery_id, utcnow())
        if replayed is None:
            raise NotFoundError("webhook delivery", delivery_id)
        return replayed
