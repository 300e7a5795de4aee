"""`/metrics`: this process's HTTP metrics, and the installation's figures from the database."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from reelforge.api.deps import RuntimeDep
from reelforge.db.stats import STEP_BUCKETS, Totals, totals
from reelforge.domain.clock import utcnow
from reelforge.services.upstream_calls import OK

router = APIRouter(tags=["operations"])


class TotalsCollector(Collector):
    """The installation's figures as read for one scrape."""

    def __init__(self, figures: Totals, now_seconds: float) -> None:
        self.figures = figures
        self.now = now_seconds

    def collect(self) -> Iterator[Metric]:
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
        yield from self._upstream()
        yield self._steps()
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
            "refund (negative), import (0: imported videos were paid for elsewhere).",
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
                "Seconds since any job engine (a separate worker or the embedded one) last "
                "recorded a heartbeat.",
                value=max(0.0, self.now - beat.timestamp()),
            )

    def _upstream(self) -> Iterator[Metric]:
        figures = self.figures
        labels = ["provider", "operation", "code"]
        calls = CounterMetricFamily(
            "reelforge_upstream_calls",
            "Calls made upstream by every process, by provider, operation and outcome (`ok`, "
            "upstream's HTTP status, or timeout/unreachable/protocol/exception).",
            labels=labels,
        )
        errors = CounterMetricFamily(
            "reelforge_upstream_errors",
            "Calls made upstream that failed (every outcome but `ok`).",
            labels=labels,
        )
        for (provider, operation, code), count in sorted(figures.upstream_calls.items()):
            calls.add_metric([provider, operation, code], count)
            if code != OK:
                errors.add_metric([provider, operation, code], count)
        yield calls
        yield errors
        per_video = (
            (
                "reelforge_video_polls",
                "Status reads recorded on the videos' rows.",
                figures.video_polls,
            ),
            (
                "reelforge_video_poll_errors",
                "Failed status reads in a row that videos carry now (a success resets a video's).",
                figures.video_poll_errors,
            ),
            (
                "reelforge_archive_retries",
                "Archive attempts that failed and were retried, summed over the videos.",
                figures.archive_retries,
            ),
        )
        for name, text, values in per_video:
            # Sums of columns on the videos' rows, which change both ways: gauges.
            gauge = GaugeMetricFamily(name, text, labels=["provider"])
            for provider, value in sorted(values.items()):
                gauge.add_metric([provider], value)
            yield gauge

    def _steps(self) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "reelforge_job_step_seconds",
            "How long each step of a job took, over every video that went through it: queue "
            "(accepted to sent upstream), generation (sent to completed upstream), archive "
            "(completed to archived).",
            labels=["provider", "step"],
        )
        for (provider, step), latency in sorted(self.figures.step_latency.items()):
            buckets = [
                (f"{bound:g}", n) for bound, n in zip(STEP_BUCKETS, latency.buckets, strict=True)
            ]
            histogram.add_metric(
                [provider, step],
                [*buckets, ("+Inf", latency.count)],
                sum_value=latency.total_seconds,
            )
        return histogram


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    # This process's own upstream calls first, so a scrape of it is never behind itself.
    await runtime.upstream_calls.flush()
    now = utcnow()
    installation = CollectorRegistry(auto_describe=False)
    installation.register(TotalsCollector(await totals(runtime.database, now), now.timestamp()))
    body = generate_latest(request.app.state.metrics_registry) + generate_latest(installation)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
