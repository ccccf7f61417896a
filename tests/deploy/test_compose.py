"""docker-compose.yml: valid for Docker Compose v2 (`docker-compose config`, which checks the
compose-spec schema and references offline, no engine needed), and shaped as docs/operations.md
says: Redis with AOF on a volume, the API, a GPU worker and a CPU demo worker by profile, shared
results and models volumes, Prometheus and Grafana in the `monitoring` profile, pinned images."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.tools import DEPLOY, ROOT, run, tool

PROFILES = ("gpu", "cpu", "monitoring", "tools")


def compose_config(*profiles: str) -> dict:
    args = [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml")]
    for p in profiles:
        args += ["--profile", p]
    result = run([*args, "config", "--format", "json"], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config(*PROFILES)


def test_compose_file_validates_for_every_profile() -> None:
    assert set(compose_config()["services"]) == {"redis", "api"}
    assert set(compose_config("gpu")["services"]) == {"redis", "api", "worker"}
    assert set(compose_config("cpu")["services"]) == {"redis", "api", "worker-cpu"}
    assert {"prometheus", "grafana"} <= set(compose_config("monitoring")["services"])


def test_config_rejects_an_invalid_file(tmp_path) -> None:
    """The validation is real: a misspelt key fails."""
    text = (ROOT / "docker-compose.yml").read_text().replace("stop_grace_period:", "stop_grace_periode:", 1)
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(text)
    result = run([tool("docker-compose"), "-f", str(bad), "--profile", "gpu", "config", "-q"])
    assert result.returncode != 0 and "stop_grace_periode" in result.stderr


def test_images_are_pinned(config: dict) -> None:
    for name, service in config["services"].items():
        image = service["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert re.fullmatch(r"v?[0-9]+\.[0-9]+\.[0-9]+[\w.-]*", tag), f"{name}: image {image} is not pinned"


def test_redis_persists_queued_jobs(config: dict) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    assert "healthcheck" in redis


def test_api_and_workers_share_results_and_redis(config: dict) -> None:
    services = config["services"]
    for name in ("api", "worker", "worker-cpu"):
        s = services[name]
        assert s["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert any(v["source"] == "results" and v["target"] == "/data" for v in s["volumes"]), name
        assert s["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["api"]["build"]["target"] == "api"


def test_gpu_worker_reserves_a_gpu_and_reads_real_weights(config: dict) -> None:
    worker = config["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and device["capabilities"] == ["gpu"]
    assert worker["environment"]["DIFFEDITOR_MODEL"] == "/models"
    (models,) = [v for v in worker["volumes"] if v["target"] == "/models"]
    assert models["source"] == "models" and models["read_only"] is True
    assert worker["build"]["target"] == "worker"
    # SIGTERM finishes the running job: the grace period outlasts a job (600 s timeout).
    assert worker["stop_grace_period"] == "11m0s"


def test_cpu_worker_asks_for_the_demo_model_explicitly(config: dict) -> None:
    worker = config["services"]["worker-cpu"]
    assert worker["environment"]["DIFFEDITOR_MODEL"] == "demo"
    assert "deploy" not in worker or not worker["deploy"].get("resources")
    assert worker["build"]["target"] == "worker-cpu"


def test_prometheus_scrapes_the_api_metrics(config: dict) -> None:
    prometheus = config["services"]["prometheus"]
    (mount,) = [v for v in prometheus["volumes"] if v["target"] == "/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())
    assert mount["source"] == str(DEPLOY / "monitoring" / "prometheus.yml")
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    grafana = config["services"]["grafana"]
    mounts = {v["source"]: v["target"] for v in grafana["volumes"]}
    dashboard = mounts[str(DEPLOY / "monitoring" / "grafana-dashboard.json")]
    provisioning = DEPLOY / "monitoring" / "grafana" / "provisioning"
    assert mounts[str(provisioning)] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "diffeditor.yml").read_text())["providers"]
    assert dashboard.rsplit("/", 1)[0] == provider["options"]["path"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
