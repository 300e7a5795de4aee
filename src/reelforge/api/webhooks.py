"""Webhooks both ways: `POST /webhooks/{provider}` from providers, `/api/webhooks…` for users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from reelforge.api.auth import CurrentAccount
from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute, max_body
from reelforge.api.errors import ApiError, documented
from reelforge.api.schemas import Envelope
from reelforge.domain.webhooks import (
    ALL_EVENT_TYPES,
    MAX_DELIVERY_LIST,
    DeliveryStatus,
    DeliveryView,
    EndpointView,
)
from reelforge.services.fal_webhooks import MAX_BODY_BYTES as FAL_MAX_BODY_BYTES
from reelforge.services.fal_webhooks import KeysUnavailable
from reelforge.services.inbound import MAX_BODY_BYTES, WebhookRejected, WebhooksNotConfigured

router = APIRouter(tags=["webhooks"], route_class=EdgeRoute)

_EVENT_TYPES = ", ".join(ALL_EVENT_TYPES)
_ANY_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class ReceivedOut(BaseModel):
    received: bool = True
    duplicate: bool = Field(description="This `webhook-id` was seen before; nothing changed.")


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="Where events are POSTed: an http(s) URL, at most 2048 chars.",
        json_schema_extra={"minLength": 1, "maxLength": 2048, "pattern": "\\S"},
    )
    description: str = Field(default="", description="A note for yourself (200 characters).")
    event_types: list[str] | None = Field(
        default=None,
        description=f"Events to send, any of {_EVENT_TYPES}; default all.",
        json_schema_extra={"items": {"type": "string", "enum": list(ALL_EVENT_TYPES)}},
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, endpoint: EndpointView) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=endpoint.event_types,
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
        )


class NewEndpointOut(EndpointOut):
    secret: str = Field(
        description="`whsec_…` signing secret (Standard Webhooks); shown only in this response."
    )


class DeliveryOut(BaseModel):
    id: str = Field(description="Also the `webhook-id` header of every attempt.")
    endpoint_id: str
    event_id: str
    event_type: str
    video_id: str | None
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, delivery: DeliveryView) -> DeliveryOut:
        return cls(
            id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            video_id=delivery.video_id,
            status=delivery.status.value,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            payload=delivery.payload,
        )


@router.post(
    "/webhooks/fal",
    openapi_extra=_ANY_JSON_BODY | max_body(FAL_MAX_BODY_BYTES),
    responses=documented(400, 404, 413, 503),
    summary="Receive fal's queue webhook (ED25519 signature checked against fal's keys)",
)
async def receive_fal_webhook(request: Request, runtime: RuntimeDep) -> Envelope[ReceivedOut]:
    # Declared before `/webhooks/{provider}`, which would otherwise take it.
    if runtime.fal_webhooks is None:
        raise ApiError(
            404,
            "webhooks_not_configured",
            "fal's webhooks are not received: the fal provider is not configured "
            "(REELFORGE_PROVIDER or REELFORGE_PROVIDERS)",
        )
    try:
        receipt = await runtime.fal_webhooks.receive(await request.body(), request.headers)
    except WebhookRejected as exc:
        raise ApiError(400, "invalid_webhook", exc.message, field=exc.field) from None
    except KeysUnavailable as exc:
        # fal redelivers (10 times over 2 hours): a later attempt will find the keys.
        raise ApiError(
            503, "webhook_keys_unavailable", str(exc), headers={"retry-after": "30"}
        ) from None
    return Envelope(data=ReceivedOut(duplicate=receipt.duplicate))


@router.post(
    "/webhooks/{provider}",
    openapi_extra=_ANY_JSON_BODY | max_body(MAX_BODY_BYTES),
    responses=documented(400, 404, 413),
    summary="Receive a provider's webhook (Standard Webhooks signature)",
)
async def receive_webhook(
    provider: str, request: Request, runtime: RuntimeDep
) -> Envelope[ReceivedOut]:
    if not runtime.inbound.configured:
        raise _not_configured()
    body = await request.body()
    try:
        receipt = await runtime.inbound.receive(provider, body, request.headers)
    except WebhooksNotConfigured:
        raise _not_configured() from None
    except WebhookRejected as exc:
        raise ApiError(400, "invalid_webhook", exc.message, field=exc.field) from None
    return Envelope(data=ReceivedOut(duplicate=receipt.duplicate))


@router.post(
    "/api/webhooks/endpoints",
    status_code=201,
    responses=documented(400, 401, 409, 422),
    summary="Register a webhook endpoint",
)
async def create_endpoint(
    body: EndpointIn, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[NewEndpointOut]:
    endpoint, secret = await runtime.webhooks.create_endpoint(
        account,
        body.url,
        description=body.description,
        event_types=list(body.event_types) if body.event_types is not None else None,
    )
    return Envelope(data=NewEndpointOut(**EndpointOut.of(endpoint).model_dump(), secret=secret))


@router.get(
    "/api/webhooks/endpoints",
    responses=documented(401),
    summary="Your webhook endpoints (never the secret)",
)
async def list_endpoints(
    account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[list[EndpointOut]]:
    return Envelope(data=[EndpointOut.of(e) for e in await runtime.webhooks.endpoints(account)])


@router.delete(
    "/api/webhooks/endpoints/{endpoint_id}",
    responses=documented(401, 404),
    summary="Delete a webhook endpoint and its deliveries",
)
async def delete_endpoint(
    endpoint_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[EndpointOut]:
    return Envelope(
        data=EndpointOut.of(await runtime.webhooks.delete_endpoint(account, endpoint_id))
    )


@router.get(
    "/api/webhooks/deliveries",
    responses=documented(400, 401, 422),
    summary="Your webhook deliveries, newest first",
)
async def list_deliveries(
    account: CurrentAccount,
    runtime: RuntimeDep,
    endpoint_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=20,
            description="pending, delivered or failed",
            json_schema_extra={"enum": [status.value for status in DeliveryStatus]},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERY_LIST)] = 20,
) -> Envelope[list[DeliveryOut]]:
    deliveries = await runtime.webhooks.deliveries(
        account, endpoint_id=endpoint_id, status=status, limit=limit
    )
    return Envelope(data=[DeliveryOut.of(d) for d in deliveries])


@router.post(
    "/api/webhooks/deliveries/{delivery_id}/replay",
    responses=documented(401, 404),
    summary="Send a delivery again now (attempts so far are kept)",
)
async def replay_delivery(
    delivery_id: str, account: CurrentAccount, runtime: RuntimeDep
) -> Envelope[DeliveryOut]:
    return Envelope(data=DeliveryOut.of(await runtime.webhooks.replay(account, delivery_id)))


def _not_configured() -> ApiError:
    return ApiError(
        404,
        "webhooks_not_configured",
        "Incoming webhooks are not configured: set REELFORGE_PROVIDER_WEBHOOK_SECRET",
    )
