"""The Kubernetes manifests, checked offline: core kinds against the official schemas (kubernetes-validate,
strict), KEDA objects and cross-references by hand, settings names against the Settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from omtx_hub.settings import Settings

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
VERSION = "1.30.0"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize(
    "doc",
    [d for d in documents() if not d["apiVersion"].startswith("keda.sh/")],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_core_objects_match_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_keda_objects_point_at_real_deployments_and_query_the_jobs_table() -> None:
    docs = documents()
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == {n for n in deployments if "worker" in n}
    for s in scaled:
        assert s["spec"]["minReplicaCount"] == 0  # scale to zero when idle
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "postgresql" and "FROM jobs" in trigger["metadata"]["query"]
        assert int(trigger["metadata"]["targetQueryValue"]) > 0
    for auth in (d for d in docs if d["kind"] == "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_workers_get_their_grace_period_and_gpus() -> None:
    docs = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}
    for name, doc in docs.items():
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        command = container.get("args", [])
        if "worker" in name:
            grace = int(command[command.index("--grace-seconds") + 1]) if "--grace-seconds" in command else 60
            assert pod["terminationGracePeriodSeconds"] > grace
    gpu = docs["omtx-hub-worker-gpu"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == "1"


def test_configured_settings_exist() -> None:
    known = {f"OMTX_{name.upper()}" for name in Settings.model_fields}
    for doc in documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            values = doc.get("data") or doc.get("stringData") or {}
            unknown = [k for k in values if k.startswith("OMTX_") and k not in known]
            assert unknown == [], (doc["metadata"]["name"], unknown)
