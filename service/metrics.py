"""Prometheus metrics for the API.

Request counts and latencies are recorded by a small ASGI middleware (labelled by route template,
so ids never explode the label space). Queue depth, workers, worker GPU memory, the worker-side
job counters/durations and the webhook delivery counters are read from Redis at scrape time by a
custom collector, so every API replica reports the same cluster-wide figures without keeping
state of its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.jobs import lifecycle, outcomes, workers
from service.jobs.context import JobContext
from service.webhooks import deliveries

log = logging.getLogger("diffeditor.api")

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class ApiMetrics:
    """The per-app registry (one per app, so tests can build many apps in one process)."""

    def __init__(self, state_getter: Callable[[], JobContext]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "diffeditor_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "diffeditor_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(QueueCollector(state_getter))


def _histogram(values: Iterable[float], buckets: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets (with +Inf) and the sum, from raw observations."""
    vals = [float(v) for v in values]
    out = [(floatToGoString(b), float(sum(1 for v in vals if v <= b))) for b in buckets]
    out.append(("+Inf", float(len(vals))))
    return out, math.fsum(vals)


def _duration_buckets(value: Any) -> tuple[list[tuple[str, float]], float] | None:
    """Accepts either raw observations (a list of seconds) or pre-bucketed data
    ({"buckets": {le: cumulative count}, "sum": s}) as `outcomes.job_metrics` reports them."""
    if isinstance(value, (list, tuple)):
        return _histogram(value, JOB_BUCKETS)
    if isinstance(value, dict) and "buckets" in value:
        raw = value["buckets"]
        items = sorted(
            ((float("inf") if str(k) in ("+Inf", "inf") else float(k), float(c)) for k, c in dict(raw).items()),
            key=lambda kv: kv[0],
        )
        buckets = [(floatToGoString(le), c) for le, c in items]
        if not buckets or buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", float(value.get("count", buckets[-1][1] if buckets else 0))))
        return buckets, float(value.get("sum", 0.0))
    return None


class QueueCollector(Collector):
    """Cluster-wide figures read from Redis at scrape time."""

    def __init__(self, state_getter: Callable[[], JobContext]) -> None:
        self._state = state_getter

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic: do not scrape Redis when registering

    def collect(self) -> Iterator[Metric]:
        ctx = self._state()
        up = GaugeMetricFamily("diffeditor_redis_up", "1 when the API reached Redis during this scrape.")
        try:
            depth = lifecycle.queue_depth(ctx)
            ready = workers.ready_workers(ctx)
            job_stats = outcomes.job_metrics(ctx)
            webhook_stats = deliveries.delivery_metrics(ctx)
        except Exception as exc:  # a scrape must not fail because Redis is down: say so instead
            log.warning("metrics: cannot read Redis: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up

        g = GaugeMetricFamily("diffeditor_queue_depth", "Jobs waiting in the queue.")
        g.add_metric([], float(depth))
        yield g

        alive = GaugeMetricFamily("diffeditor_workers_alive", "Workers registered warm with a live heartbeat.")
        alive.add_metric([], float(len(ready)))
        yield alive

        mem = GaugeMetricFamily(
            "diffeditor_worker_gpu_memory_bytes",
            "GPU memory in use as reported by each worker.",
            labels=["worker", "device"],
        )
        for w in ready:
            if w.get("gpu_memory_bytes") is not None:
                mem.add_metric([str(w.get("name", "")), str(w.get("device", ""))], float(w["gpu_memory_bytes"]))
        yield mem

        counts = CounterMetricFamily(
            "diffeditor_jobs", "Finished jobs by task and outcome (worker side).", labels=["task", "outcome"]
        )
        for key, n in sorted((job_stats.get("jobs") or {}).items()):
            task, outcome = key
            counts.add_metric([str(task), str(outcome)], float(n))
        yield counts

        errors = CounterMetricFamily(
            "diffeditor_job_errors", "Failed jobs by task and error code (worker side).", labels=["task", "code"]
        )
        for (task, code), n in sorted((job_stats.get("errors") or {}).items()):
            errors.add_metric([str(task), str(code)], float(n))
        yield errors

        durations = HistogramMetricFamily(
            "diffeditor_job_duration_seconds",
            "Job stage durations by task and stage (worker side).",
            labels=["task", "stage"],
        )
        for key, value in sorted((job_stats.get("durations") or {}).items()):
            task, stage = key
            parsed = _duration_buckets(value)
            if parsed is not None:
                buckets, total = parsed
                durations.add_metric([str(task), str(stage)], buckets, total)
        yield durations

        webhooks = CounterMetricFamily(
            "diffeditor_webhook_deliveries",
            "Webhook delivery attempts by event and outcome (delivered, retrying, failed, refused).",
            labels=["event", "outcome"],
        )
        for (event, outcome), n in sorted(webhook_stats.items()):
            webhooks.add_metric([event, outcome], float(n))
        yield webhooks


class MetricsMiddleware:
    """Counts requests and their latency by route template (pure ASGI: no body buffering)."""

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
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
