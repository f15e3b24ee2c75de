"""Prometheus metrics of our own, and the contract's `/metrics/json` summary.

Job numbers are read from the jobs themselves (Dagster runs), not counted in this process, so they
are right after a restart and agree across several REST processes:

- `musicgen_jobs{type, status}`: jobs by type and outcome (queued, processing, completed, failed)
- `musicgen_queue_length`: jobs waiting to start
- `musicgen_job_duration_seconds{type}`: wall time of finished runs (histogram)
- `musicgen_generation_seconds`, `musicgen_generation_real_time_factor`: generation / separation
  step seconds and seconds-per-audio-second of finished runs (histograms)
- `musicgen_transition_score{metric}`: transition scores of finished soundtracks (histograms)
- `musicgen_regenerations_total`: quality-loop regenerations (Dagster step retries)

Per process: `musicgen_api_jobs_submitted_total{type}`, `musicgen_api_requests_total{method, route,
status}` and `musicgen_api_request_duration_seconds{route}`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicgen_pipeline.api.jobs import JOB_TYPES, Jobs, JobView

STATUSES = ("queued", "processing", "completed", "failed")
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
RTF_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50)
SCORE_BUCKETS = (0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0, 2.0, 5.0, 10.0, 100.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


def _histogram(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=list(labels))


def _add_histogram(
    family: HistogramMetricFamily,
    values: Iterable[float],
    buckets: Sequence[float],
    labels: Sequence[str] = (),
) -> None:
    data = sorted(values)
    counts = [(str(float(le)), float(sum(1 for v in data if v <= le))) for le in buckets]
    counts.append(("+Inf", float(len(data))))
    family.add_metric(list(labels), counts, sum_value=float(sum(data)))


class JobsCollector(Collector):
    """Collects the job metrics from `Jobs.summary()` at scrape time."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def collect(self) -> Iterable[Metric]:
        views = self.jobs.summary()
        by_type_status: Counter[tuple[str, str]] = Counter((v.job_type, v.status) for v in views)
        jobs = GaugeMetricFamily(
            "musicgen_jobs",
            "REST jobs by type and status (read from Dagster runs)",
            labels=["type", "status"],
        )
        for job_type in JOB_TYPES:
            for status in STATUSES:
                jobs.add_metric([job_type, status], by_type_status[(job_type, status)])
        yield jobs
        yield GaugeMetricFamily(
            "musicgen_queue_length",
            "Jobs waiting to start",
            value=sum(1 for v in views if v.status == "queued"),
        )
        durations = _histogram(
            "musicgen_job_duration_seconds", "Wall time of finished job runs", ["type"], DURATION_BUCKETS
        )
        for job_type in JOB_TYPES:
            _add_histogram(
                durations,
                [v.seconds for v in views if v.job_type == job_type and v.final and v.seconds is not None],
                DURATION_BUCKETS,
                [job_type],
            )
        yield durations
        finished = [v for v in views if v.final]
        gen = _histogram(
            "musicgen_generation_seconds",
            "Seconds spent in generation/separation steps",
            [],
            DURATION_BUCKETS,
        )
        _add_histogram(
            gen, [x for v in finished for x in v.metrics.get("generation_seconds", [])], DURATION_BUCKETS
        )
        yield gen
        rtf = _histogram(
            "musicgen_generation_real_time_factor",
            "Compute seconds per second of audio (generation, separation)",
            [],
            RTF_BUCKETS,
        )
        _add_histogram(rtf, [x for v in finished for x in v.metrics.get("real_time_factor", [])], RTF_BUCKETS)
        yield rtf
        scores = _histogram(
            "musicgen_transition_score",
            "Transition scores of finished soundtracks",
            ["metric"],
            SCORE_BUCKETS,
        )
        by_metric: dict[str, list[float]] = {}
        for v in finished:
            for metric, values in v.metrics.get("transition_scores", {}).items():
                by_metric.setdefault(metric, []).extend(values)
        for metric, values in sorted(by_metric.items()):
            _add_histogram(scores, values, SCORE_BUCKETS, [metric])
        yield scores
        regen = CounterMetricFamily(
            "musicgen_regenerations", "Segments regenerated by the quality loop (step retries)"
        )
        regen.add_metric([], float(sum(v.retries for v in views)))
        yield regen


class ApiMetrics:
    """The app's own registry (no global state: several apps can live in one process)."""

    def __init__(self, jobs: Jobs) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(JobsCollector(jobs))
        self.submitted = PromCounter(
            "musicgen_api_jobs_submitted",
            "Jobs accepted by this REST process",
            ["type"],
            registry=self.registry,
        )
        self.requests = PromCounter(
            "musicgen_api_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "musicgen_api_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


def summary_json(views: list[JobView]) -> dict[str, Any]:
    """The contract's `/metrics/json` (averages over finished runs of each type; null when none)."""

    def average(job_type: str) -> float | None:
        values = [
            v.seconds
            for v in views
            if v.job_type == job_type and v.status == "completed" and v.seconds is not None
        ]
        return round(sum(values) / len(values), 3) if values else None

    return {
        "jobs_total": len(views),
        "jobs_completed": sum(1 for v in views if v.status == "completed"),
        "jobs_failed": sum(1 for v in views if v.status == "failed"),
        "jobs_in_progress": sum(1 for v in views if v.status in ("queued", "processing")),
        "avg_generation_time_seconds": average("generate"),
        "avg_soundtrack_time_seconds": average("soundtrack"),
        "avg_separation_time_seconds": average("separate"),
    }


class RequestMetricsMiddleware:
    """Counts requests and their latency by route template (never by raw path: ids would explode it)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", "GET"), template, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
