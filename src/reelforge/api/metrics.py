"""`/metrics`: this process's HTTP metrics, and the installation's figures from the database."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reelforge.api.deps import RuntimeDep
from reelforge.db.stats import Totals, totals
from reelforge.domain.clock import utcnow

router = APIRouter(tags=["operations"])


class TotalsCollector(Collector):
    """The installation's figures as read for one scrape."""

    def __init__(self, figures: Totals, now_seconds: float) -> None:
        self.figures = figures
        self.now = now_seconds

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        figures = self.figures
        videos = GaugeMetricFamily(
            "reelforge_videos", "Videos by provider and job state.", labels=["provider", "state"]
        )
        for (provider, state), count in sorted(figures.videos_by_state.items()):
            videos.add_metric([provider, state], count)
        yield videos
        lag = figures.oldest_due_at
        yield GaugeMetricFamily(
            "reelforge_queue_lag_seconds",
            "How long the oldest due video has waited for a worker (0 when none is due).",
            value=0.0 if lag is None else max(0.0, self.now - lag.timestamp()),
        )
        polls = CounterMetricFamily(
            "reelforge_upstream_polls", "Status reads sent upstream.", labels=["provider"]
        )
        errors = CounterMetricFamily(
            "reelforge_upstream_poll_errors", "Status reads that failed.", labels=["provider"]
        )
        for provider in sorted(figures.upstream_polls):
            polls.add_metric([provider], figures.upstream_polls[provider])
            errors.add_metric([provider], figures.upstream_poll_errors[provider])
        yield polls
        yield errors
        yield GaugeMetricFamily(
            "reelforge_archive_bytes",
            "Bytes of archived videos, thumbnails and spritesheets (deleted videos excluded).",
            value=figures.archive_bytes,
        )
        yield GaugeMetricFamily(
            "reelforge_spend_usd",
            "Money spent (USD): reservations, less refunds, adjusted to final costs; what "
            "budgets count.",
            value=float(sum(figures.ledger.values())),
        )
        ledger = GaugeMetricFamily(
            "reelforge_ledger_usd",
            "The ledger's sum by kind (USD): reserve, settle (final cost less the estimate), "
            "refund (negative).",
            labels=["kind"],
        )
        for kind, amount in sorted(figures.ledger.items()):
            ledger.add_metric([kind], float(amount))
        yield ledger
        deliveries = GaugeMetricFamily(
            "reelforge_webhook_deliveries",
            "Outgoing webhook deliveries by status.",
            labels=["status"],
        )
        for status, count in sorted(figures.deliveries.items()):
            deliveries.add_metric([status], count)
        yield deliveries
        beat = figures.last_heartbeat_at
        if beat is not None:
            yield GaugeMetricFamily(
                "reelforge_worker_heartbeat_age_seconds",
                "Seconds since any separate worker last recorded a heartbeat.",
                value=max(0.0, self.now - beat.timestamp()),
            )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    now = utcnow()
    installation = CollectorRegistry(auto_describe=False)
    installation.register(TotalsCollector(await totals(runtime.database, now), now.timestamp()))
    body = generate_latest(request.app.state.metrics_registry) + generate_latest(installation)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
