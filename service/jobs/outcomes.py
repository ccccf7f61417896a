"""Counters of finished jobs (by task and outcome, by task and failure code) and the histogram of
their stage durations, kept in Redis by the workers and read by the API's /metrics."""

from __future__ import annotations

import math
from typing import Any

from service.jobs.context import JobContext

# Histogram bucket upper bounds (seconds) for job durations; "+Inf" is implicit.
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 150.0, 300.0, 600.0)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def record_outcome(
    ctx: JobContext,
    *,
    task: str,
    outcome: str,
    code: str | None = None,
    durations: dict[str, float] | None = None,
) -> None:
    """Count one finished job and observe its stage durations (see job_metrics for the layout)."""
    keys = ctx.keys
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(keys.metrics("jobs"), f"{task}|{outcome}", 1)
        if code:
            pipe.hincrby(keys.metrics("errors"), f"{task}|{code}", 1)
        dkey = keys.metrics("durations")
        for stage, seconds in (durations or {}).items():
            base = f"{task}|{stage.replace('|', '_')}"
            for bound in (*DURATION_BUCKETS, math.inf):
                if seconds <= bound:
                    pipe.hincrby(dkey, f"{base}|{_le(bound)}", 1)
            pipe.hincrbyfloat(dkey, f"{base}|sum", float(seconds))
            pipe.hincrby(dkey, f"{base}|count", 1)
        pipe.execute()


def job_metrics(ctx: JobContext) -> dict:
    """Worker-side aggregates for /metrics:

        {"jobs":      {(task, outcome): count},          outcome in succeeded | failed | canceled | expired
         "errors":    {(task, code): count},             failure codes (invalid_input, timeout, ...)
         "durations": {(task, stage): {"buckets": [(le, cumulative_count), ..., ("+Inf", n)],
                                       "sum": seconds, "count": n}}}

    `le` are strings ("0.05", ..., "+Inf") as prometheus_client's HistogramMetricFamily takes them.
    Stages: "queued" (enqueue to start), "total" (worker wall time of the job), and each engine
    stage from the edit's stats (e.g. "inversion", "sampling", ...). Counters have no TTL on purpose
    (they are cumulative like any Prometheus counter).
    """
    keys = ctx.keys
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.metrics("jobs"))
        pipe.hgetall(keys.metrics("errors"))
        pipe.hgetall(keys.metrics("durations"))
        jobs_raw, errors_raw, dur_raw = pipe.execute()

    def pairs(raw: dict) -> dict[tuple[str, str], int]:
        out = {}
        for k, v in raw.items():
            a, b = k.decode().split("|", 1)
            out[(a, b)] = int(v)
        return out

    durations: dict[tuple[str, str], dict[str, Any]] = {}
    for k, v in dur_raw.items():
        task, stage, field = k.decode().split("|", 2)
        d = durations.setdefault((task, stage), {"buckets": {}, "sum": 0.0, "count": 0})
        if field == "sum":
            d["sum"] = float(v)
        elif field == "count":
            d["count"] = int(v)
        else:
            d["buckets"][field] = int(v)
    for d in durations.values():
        got = d["buckets"]
        d["buckets"] = [(_le(b), got.get(_le(b), 0)) for b in (*DURATION_BUCKETS, math.inf)]
    return {"jobs": pairs(jobs_raw), "errors": pairs(errors_raw), "durations": durations}
