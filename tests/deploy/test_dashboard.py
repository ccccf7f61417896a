"""The Grafana dashboard queries only series the API really exports: the API app is built on the
real Redis (database 3), fed worker-side figures the way workers write them, scraped at /metrics,
and every metric and grouping label in the dashboard is checked against that exposition."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from service.app import create_app
from service.jobs import outcomes, workers
from service.jobs.context import JobContext, connect
from service.settings import Settings
from tests.deploy.tools import DEPLOY
from tests.processes import suite_redis_url

DASHBOARD = DEPLOY / "monitoring" / "grafana-dashboard.json"
REDIS_URL = suite_redis_url(3)


@pytest.fixture
def scrape(tmp_path: Path) -> Iterator[dict[str, set[str]]]:
    """Sample name -> label names, from the API's /metrics after one finished job."""
    settings = Settings(redis_url=REDIS_URL, data_dir=tmp_path)
    redis = connect(settings)
    redis.flushdb()  # database 3 belongs to the deployment tests
    outcomes.record_outcome(
        JobContext(redis, settings), task="move", outcome="succeeded", durations={"total": 1.5, "sampling": 1.0}
    )
    outcomes.record_outcome(JobContext(redis, settings), task="drag", outcome="failed", code="out_of_memory")
    info = {"name": "w1", "device": "cuda:0", "model": "/models", "is_demo": False, "gpu_memory_bytes": 5 << 30}
    workers.register_worker(JobContext(redis, settings), info)
    with TestClient(create_app(settings, redis=redis)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    yield samples
    Redis.from_url(REDIS_URL).flushdb()


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert dashboard["templating"]["list"][0] == {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        assert {"x", "y", "w", "h"} == set(p["gridPos"])
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("queue depth", "latency p95 by task and stage", "failures", "gpu memory"):
        assert topic in titles


def test_every_dashboard_query_uses_exported_metrics_and_labels(scrape: dict[str, set[str]]) -> None:
    for title, expr in queries():
        names = set(re.findall(r"\bdiffeditor_[a-z0-9_]+", expr))
        assert names, f"{title}: no diffeditor metric in {expr}"
        labels: set[str] = set()
        for name in names:
            assert name in scrape, f"{title}: {name} is not exported by the API's /metrics"
            labels |= scrape[name]
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"{title}: label {label!r} is not on {sorted(names)}"
        for label in re.findall(r"\{(\w+)[=!~]", expr):
            assert label in labels, f"{title}: label {label!r} is not on {sorted(names)}"
