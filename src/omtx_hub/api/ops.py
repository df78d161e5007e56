"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from omtx_hub.access import get_hub, require_admin
from omtx_hub.domain import TERMINAL, JobStatus, JobType
from omtx_hub.errors import QueueUnavailable
from omtx_hub.queue import QueueManager

__all__ = ["router"]

router = APIRouter(tags=["operations"])

DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class QueueCollector:
    """Reads the figures from the database at scrape time, so every API replica reports the same.

    Queue depth, workers and job counts are read on every scrape (their cost grows with batches,
    not children). The two sums over every finished job, accelerator seconds and the duration
    histogram, scan the jobs table, so each process reuses them for ``history_seconds``."""

    def __init__(self, manager: QueueManager, worker_seen_seconds: float, history_seconds: float = 0.0) -> None:
        self.manager = manager
        self.worker_seen_seconds = worker_seen_seconds
        self.history_seconds = history_seconds
        self._history: tuple[float, dict[str, float], tuple[list[int], float, int]] | None = None

    def _history_sums(self) -> tuple[dict[str, float], tuple[list[int], float, int]]:
        now = time.monotonic()
        if self._history is None or now - self._history[0] >= self.history_seconds:
            self._history = (now, self.manager.accelerator_seconds(), self.manager.duration_histogram(DURATION_BUCKETS))
        return self._history[1], self._history[2]

    def collect(self) -> Iterator[Metric]:
        counts = self.manager.status_counts()
        depth = GaugeMetricFamily("omtx_queue_jobs", "Jobs (not batch parents) by status", labels=["status"])
        by_predictor = GaugeMetricFamily(
            "omtx_queue_jobs_by_predictor",
            "Jobs (not batch parents) by status and predictor",
            labels=["status", "predictor"],
        )
        finished = CounterMetricFamily("omtx_jobs_finished", "Jobs finished, by outcome", labels=["outcome"])
        batches = GaugeMetricFamily("omtx_batches", "Batches by status", labels=["status"])
        predictors = sorted({p for (_, _, p) in counts})
        for status in JobStatus:
            jobs_of = {k: v for k, v in counts.items() if k[1] == status.value and k[0] != JobType.BATCH_PARENT.value}
            n = sum(jobs_of.values())
            depth.add_metric([status.value], n)
            for predictor in predictors:
                by_predictor.add_metric(
                    [status.value, predictor], sum(v for (_, _, p), v in jobs_of.items() if p == predictor)
                )
            if status.value in TERMINAL:
                finished.add_metric([status.value], n)
            batches.add_metric(
                [status.value],
                sum(v for (t, s, _), v in counts.items() if t == JobType.BATCH_PARENT.value and s == status.value),
            )
        yield depth
        yield by_predictor
        yield finished
        yield batches
        seconds = CounterMetricFamily(
            "omtx_accelerator_seconds", "Accelerator (GPU or CPU) seconds of the predict step", labels=["predictor"]
        )
        accelerator, (cumulative, total, count) = self._history_sums()
        for predictor, used in sorted(accelerator.items()):
            seconds.add_metric([predictor], used)
        yield seconds
        buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)] + [("+Inf", count)]
        yield HistogramMetricFamily(
            "omtx_job_duration_seconds",
            "Run time of completed jobs (claim to completion)",
            buckets=buckets,
            sum_value=total,
        )
        alive = self.manager.live_workers(self.worker_seen_seconds)
        workers = GaugeMetricFamily("omtx_workers_alive", "Workers heard from recently")
        workers.add_metric([], len(alive))
        yield workers


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers; the result store accepts writes", response_model=None)
def readyz(request: Request) -> Any:
    """503 when the database does not answer (nothing works without it). A store that refuses writes
    (a full disk) is 200 ``degraded``: the API still serves status, results and submissions, while
    workers hold their jobs back until it accepts writes again."""
    hub = get_hub(request)
    try:
        hub.manager.ping()
    except QueueUnavailable as exc:
        return JSONResponse(
            status_code=503,
            content={"error": {"code": "database_unreachable", "message": exc.message[:300], "details": None}},
        )
    reason = hub.store_refusal()
    if reason is not None:
        paused = sum(1 for w in hub.manager.live_workers(hub.settings.worker_seen_seconds) if w["paused_reason"])
        return {"status": "degraded", "store": "unwritable", "reason": reason, "paused_workers": paused}
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus metrics (admin key)", dependencies=[Depends(require_admin)])
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
