"""The Kubernetes manifests: every overlay renders with kustomize, every object validates against
the Kubernetes schemas offline (kubernetes-validate, strict), the custom resources against
crd_schemas.py, and the operational invariants hold (resources, probes, non-root, pinned images,
GPUs in prod, scale to zero, a grace period longer than a job, Redis fenced off)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tests.deploy.tools import SETUP_HINT

try:
    import jsonschema
    import kubernetes_validate.utils as kv
except ImportError:
    pytest.fail(f"kubernetes-validate is not installed: {SETUP_HINT}", pytrace=False)

from tests.deploy.crd_schemas import CRD_SCHEMAS
from tests.deploy.tools import DEPLOY, render

# The oldest Kubernetes still commonly run and the newest the schemas know.
K8S_VERSIONS = ("1.30.0", kv.latest_version())
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
QUEUE_LIST = "rq:queue:diffeditor"


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict], kind: str, name: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def extra_manifests() -> list[dict]:
    """Manifests applied by hand (not part of a kustomization): the prod model-download Job."""
    docs = []
    for path in sorted((DEPLOY / "overlays").glob("*/jobs/*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def validate(doc: dict, version: str) -> None:
    schema = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    if schema is not None:
        jsonschema.validate(doc, schema)
    else:
        kv.validate(doc, version, strict=True)


# ------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_against_its_schema(manifests: list[dict], version: str) -> None:
    assert manifests
    for doc in manifests + extra_manifests():
        try:
            validate(doc, version)
        except (jsonschema.ValidationError, kv.ValidationError, kv.SchemaNotFoundError) as e:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {e}")


def test_validation_rejects_a_misspelt_field() -> None:
    """The validation above is strict: a typo in a core object or a custom resource is caught."""
    manifests = render("prod")
    deployment = copy.deepcopy(one(manifests, "Deployment", "diffeditor-worker"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 660
    with pytest.raises(kv.ValidationError):
        validate(deployment, K8S_VERSIONS[-1])
    scaled = copy.deepcopy(one(manifests, "ScaledObject", "diffeditor-worker"))
    scaled["spec"]["triggers"][0]["metadata"]["listname"] = QUEUE_LIST
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled, K8S_VERSIONS[-1])


def test_both_overlays_have_the_whole_deployment(manifests: list[dict]) -> None:
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for expected in [
        ("Deployment", "diffeditor-api"),
        ("Service", "diffeditor-api"),
        ("HorizontalPodAutoscaler", "diffeditor-api"),
        ("Deployment", "diffeditor-worker"),
        ("ScaledObject", "diffeditor-worker"),
        ("TriggerAuthentication", "diffeditor-redis"),
        ("PodDisruptionBudget", "diffeditor-api"),
        ("PodDisruptionBudget", "diffeditor-worker"),
        ("NetworkPolicy", "diffeditor-api"),
        ("NetworkPolicy", "diffeditor-worker"),
    ]:
        assert expected in kinds
    namespaces = {m["metadata"].get("namespace") for m in manifests if m["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


# ---------------------------------------------------------------------------- invariants


def test_every_container_has_resources_probes_and_runs_non_root(manifests: list[dict]) -> None:
    workloads = [m for m in manifests + extra_manifests() if m["kind"] in WORKLOAD_KINDS]
    assert workloads
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in containers(w):
            where = f"{name} container {c['name']}"
            requests, limits = c["resources"]["requests"], c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(requests), where
            assert "memory" in limits, where
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            if w["kind"] != "Job":  # a one-off Job has nothing to be ready for
                assert "readinessProbe" in c, where


def test_every_volume_mount_refers_to_a_declared_volume(manifests: list[dict]) -> None:
    """Patches that remove volumes (prod's S3 store) must remove their mounts too."""
    for w in (m for m in manifests + extra_manifests() if m["kind"] in WORKLOAD_KINDS):
        declared = {v["name"] for v in pod_spec(w).get("volumes", [])}
        declared |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        for c in containers(w):
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in declared, f"{w['metadata']['name']}: mount {mount} has no volume"


def test_images_are_pinned(manifests: list[dict]) -> None:
    for w in (m for m in manifests + extra_manifests() if m["kind"] in WORKLOAD_KINDS):
        for c in containers(w):
            image = c["image"]
            name, _, digest = image.partition("@")
            tag = name.rsplit("/", 1)[-1].partition(":")[2]
            if not digest.startswith("sha256:"):
                assert re.fullmatch(r"v?[0-9][\w.-]*", tag), f"{image}: pin a version tag (or a digest)"


def test_api_probes_do_not_depend_on_workers(manifests: list[dict]) -> None:
    """Workers scale to zero: an API readiness tied to /readyz (which wants a warm worker) would
    take the API out of its Service exactly when a client must submit the job that wakes one."""
    api = one(manifests, "Deployment", "diffeditor-api")
    (c,) = containers(api)
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "replicas" not in api["spec"], "the HPA owns the API's replica count"
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"


def test_api_keys_and_redis_url_come_from_secrets(manifests: list[dict]) -> None:
    for name in ("diffeditor-api", "diffeditor-worker"):
        (c,) = containers(one(manifests, "Deployment", name))
        env = {e["name"]: e for e in c["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "diffeditor-redis", "key": "url"}
    (c,) = containers(one(manifests, "Deployment", "diffeditor-api"))
    env = {e["name"]: e for e in c["env"]}
    assert env["DIFFEDITOR_API_KEY_HASHES"]["valueFrom"]["secretKeyRef"]["name"] == "diffeditor-api-keys"
    for config in by_kind(manifests, "ConfigMap"):
        for key in config.get("data", {}):
            assert not re.search(r"KEY|PASSWORD|SECRET|REDIS_URL", key), f"{key} belongs in a Secret"


def test_worker_readiness_means_registered_warm_and_grace_outlasts_a_job(manifests: list[dict]) -> None:
    worker = one(manifests, "Deployment", "diffeditor-worker")
    (c,) = containers(worker)
    assert c["readinessProbe"]["exec"]["command"] == ["diffeditor-worker-ready"]
    env = {e["name"]: e for e in c["env"]}
    # The probe looks for the worker by the pod's name; the worker registers under that name.
    assert env["DIFFEDITOR_WORKER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert c["args"] == ["diffeditor", "worker", "--name", "$(DIFFEDITOR_WORKER_NAME)"]
    config = {k: v for m in by_kind(manifests, "ConfigMap") for k, v in m.get("data", {}).items()}
    job_timeout = int(config["DIFFEDITOR_JOB_TIMEOUT_S"])
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > job_timeout
    # No surge pod (it would need a spare GPU); one worker replaced at a time.
    assert worker["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"


def test_keda_scales_workers_on_the_rq_queue_down_to_zero(manifests: list[dict]) -> None:
    scaled = one(manifests, "ScaledObject", "diffeditor-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "diffeditor-worker"
    assert scaled["minReplicaCount"] == 0
    assert scaled["maxReplicaCount"] >= 1
    (trigger,) = scaled["triggers"]
    config = {k: v for m in by_kind(manifests, "ConfigMap") for k, v in m.get("data", {}).items()}
    assert trigger["metadata"]["listName"] == f"rq:queue:{config['DIFFEDITOR_QUEUE_NAME']}" == QUEUE_LIST
    auth = one(manifests, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {"diffeditor-redis"}


def test_disruption_budgets_cover_api_and_workers(manifests: list[dict]) -> None:
    selectors = {
        tuple(sorted(p["spec"]["selector"]["matchLabels"].items())) for p in by_kind(manifests, "PodDisruptionBudget")
    }
    for name in ("diffeditor-api", "diffeditor-worker"):
        labels = one(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert any(set(sel) <= set(labels.items()) for sel in selectors), f"no PDB selects {name}"


def test_workers_accept_no_connections(manifests: list[dict]) -> None:
    policy = one(manifests, "NetworkPolicy", "diffeditor-worker")["spec"]
    assert policy["policyTypes"] == ["Ingress"] and policy["ingress"] == []


# ------------------------------------------------------------------------------ overlays


def test_dev_runs_the_demo_model_on_cpu_with_redis_in_cluster() -> None:
    manifests = render("dev")
    (worker,) = containers(one(manifests, "Deployment", "diffeditor-worker"))
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["DIFFEDITOR_MODEL"] == "demo" and env["DIFFEDITOR_DEVICE"] == "cpu"
    assert "nvidia.com/gpu" not in worker["resources"]["limits"]
    assert worker["image"].startswith("diffeditor-worker-cpu:")
    redis = one(manifests, "StatefulSet", "diffeditor-redis")
    (c,) = containers(redis)
    assert c["args"][:2] == ["--appendonly", "yes"], "queued jobs must survive a Redis restart"
    assert "noeviction" in c["args"], "RQ must never lose keys to eviction"
    assert redis["spec"]["volumeClaimTemplates"], "the AOF needs a persistent volume"
    secret = one(manifests, "Secret", "diffeditor-redis")
    assert set(secret["data"]) == {"url", "address", "password"}


def test_dev_redis_is_reachable_only_from_api_workers_and_keda() -> None:
    manifests = render("dev")
    policy = one(manifests, "NetworkPolicy", "diffeditor-redis")["spec"]
    redis_labels = one(manifests, "StatefulSet", "diffeditor-redis")["spec"]["template"]["metadata"]["labels"]
    assert set(policy["podSelector"]["matchLabels"].items()) <= set(redis_labels.items())
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    peers = rule["from"]
    components = {p["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for p in peers}
    assert components == {"api", "worker", None}
    (keda,) = [p for p in peers if "namespaceSelector" in p]
    assert keda["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}
    # Nothing else of the app is a StatefulSet or exposes Redis.
    assert [s["metadata"]["name"] for s in by_kind(manifests, "StatefulSet")] == ["diffeditor-redis"]


def test_prod_runs_one_gpu_per_worker_on_real_weights_with_external_redis_and_s3() -> None:
    manifests = render("prod")
    worker = one(manifests, "Deployment", "diffeditor-worker")
    (c,) = containers(worker)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["resources"]["requests"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["DIFFEDITOR_MODEL"] == "/models"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/models"].get("readOnly") is True
    assert any(t["key"] == "nvidia.com/gpu" for t in pod_spec(worker)["tolerations"])
    # External Redis: no Redis in the cluster, no Secret values in the repository.
    assert not by_kind(manifests, "StatefulSet") and not by_kind(manifests, "Secret")
    config = {k: v for m in by_kind(manifests, "ConfigMap") for k, v in m.get("data", {}).items()}
    assert config["DIFFEDITOR_STORE"] == "s3"
    assert not [p for p in by_kind(manifests, "PersistentVolumeClaim") if p["metadata"]["name"] == "diffeditor-results"]
    monitor = one(manifests, "ServiceMonitor", "diffeditor-api")["spec"]
    service = one(manifests, "Service", "diffeditor-api")
    assert set(monitor["selector"]["matchLabels"].items()) <= set(service["metadata"]["labels"].items())
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    dashboards = [
        m for m in by_kind(manifests, "ConfigMap") if m["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    assert len(dashboards) == 1


def test_namespaces_enforce_the_restricted_pod_security_standard(manifests: list[dict]) -> None:
    (namespace,) = by_kind(manifests, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
