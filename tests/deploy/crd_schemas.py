"""JSON schemas for the custom resources the manifests use, which the core Kubernetes schemas
(kubernetes-validate) do not cover: KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1)
and the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1).

They are written here from the CRDs' documented fields, limited to what a manifest of this
project may use, and closed (`additionalProperties: false`) so that a misspelt field fails just as
it does in the core schemas. They are no substitute for the CRDs themselves: a field the real
CRD has and this project does not use is rejected here too, on purpose.
"""

from __future__ import annotations

from typing import Any

STR: dict[str, Any] = {"type": "string", "minLength": 1}
INT: dict[str, Any] = {"type": "integer"}
LABELS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}


def closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


METADATA = closed({"name": STR, "namespace": STR, "labels": LABELS, "annotations": LABELS}, ["name"])


def resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return closed(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
        ["apiVersion", "kind", "metadata", "spec"],
    )


HPA_POLICY = closed({"type": {"enum": ["Pods", "Percent"]}, "value": INT, "periodSeconds": INT}, ["type", "value"])
HPA_RULES = closed(
    {
        "stabilizationWindowSeconds": INT,
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {"type": "array", "items": HPA_POLICY},
    }
)

# keda.sh/v1alpha1 ScaledObject: https://keda.sh/docs/latest/reference/scaledobject-spec/
# with the Redis list scaler: https://keda.sh/docs/latest/scalers/redis-lists/
REDIS_LIST_METADATA = closed(
    {
        "listName": STR,
        "listLength": {"type": "string", "pattern": "^[0-9]+$"},
        "activationListLength": {"type": "string", "pattern": "^[0-9]+$"},
        "databaseIndex": {"type": "string", "pattern": "^[0-9]+$"},
        "enableTLS": {"enum": ["true", "false"]},
        "addressFromEnv": STR,
        "passwordFromEnv": STR,
    },
    ["listName"],
)
SCALED_OBJECT = resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    closed(
        {
            "scaleTargetRef": closed({"apiVersion": STR, "kind": STR, "name": STR}, ["name"]),
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": closed(
                {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": closed(
                        {"name": STR, "behavior": closed({"scaleUp": HPA_RULES, "scaleDown": HPA_RULES})}
                    ),
                }
            ),
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": closed(
                    {
                        "type": {"const": "redis"},
                        "name": STR,
                        "metadata": REDIS_LIST_METADATA,
                        "authenticationRef": closed(
                            {"name": STR, "kind": {"enum": ["TriggerAuthentication"]}}, ["name"]
                        ),
                    },
                    ["type", "metadata"],
                ),
            },
        },
        ["scaleTargetRef", "triggers"],
    ),
)

# keda.sh/v1alpha1 TriggerAuthentication: https://keda.sh/docs/latest/concepts/authentication/
# Parameters the Redis scaler accepts from a secret.
TRIGGER_AUTHENTICATION = resource(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    closed(
        {
            "secretTargetRef": {
                "type": "array",
                "minItems": 1,
                "items": closed(
                    {
                        "parameter": {"enum": ["address", "host", "port", "username", "password"]},
                        "name": STR,
                        "key": STR,
                    },
                    ["parameter", "name", "key"],
                ),
            }
        },
        ["secretTargetRef"],
    ),
)

# monitoring.coreos.com/v1 ServiceMonitor: https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.ServiceMonitor
SERVICE_MONITOR = resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    closed(
        {
            "selector": closed({"matchLabels": LABELS}, ["matchLabels"]),
            "namespaceSelector": closed({"matchNames": {"type": "array", "items": STR}, "any": {"type": "boolean"}}),
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": closed(
                    {
                        "port": STR,
                        "path": STR,
                        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                    },
                    ["port"],
                ),
            },
        },
        ["selector", "endpoints"],
    ),
)

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
}
