"""deploy/k8s (Kustomize) agrees with docker-compose.yml and with the Kubernetes API schemas.

The base manifests are plain YAML and are always checked. The overlays are rendered with a real
Kustomize (`kubectl kustomize`, or a `kustomize` binary) when one is on PATH; without one, the
overlay tests skip and say so. Objects are validated offline against the schemas that the
`kubernetes-validate` package bundles.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32"
COMPOSE_DEFAULT = re.compile(r"^\$\{(\w+):-(.*)\}$")
PORTS = {
    "gateway": 8000,
    "orchestrator": 8001,
    "embedding": 8002,
    "retrieval": 8003,
    "llm": 8004,
    "safety": 8005,
}
STORES = {"redis": (6379, "/data"), "qdrant": (6333, "/qdrant/storage")}

Object = dict[str, Any]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def compose_env(service: str) -> dict[str, str]:
    """The compose environment with `${VAR:-default}` resolved to its default."""
    env = {}
    for name, value in (compose()["services"][service].get("environment") or {}).items():
        match = COMPOSE_DEFAULT.match(str(value))
        env[name] = match.group(2) if match else str(value)
    return env


@cache
def base_objects() -> tuple[Object, ...]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return tuple(
        document
        for resource in kustomization["resources"]
        for document in yaml.safe_load_all((BASE / resource).read_text())
        if document
    )


def renderer() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


@cache
def rendered(overlay: str) -> tuple[Object, ...]:
    command = renderer()
    if command is None:
        pytest.skip("no kustomize renderer on PATH (kubectl or kustomize); the overlays are not rendered")
    result = subprocess.run(
        [*command, str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def find(objects: tuple[Object, ...], kind: str, name: str) -> Object:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def container(objects: tuple[Object, ...], name: str, kind: str = "Deployment") -> Object:
    [only] = find(objects, kind, name)["spec"]["template"]["spec"]["containers"]
    return only


def resolve_env(objects: tuple[Object, ...], entry: Object) -> str | None:
    """An env entry's value, following ConfigMap and Secret references; None for a Secret not rendered."""
    if "value" in entry:
        return str(entry["value"])
    source = entry["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return str(find(objects, "ConfigMap", ref["name"])["data"][ref["key"]])
    ref = source["secretKeyRef"]
    secrets = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]]
    if not secrets:
        return None
    [secret] = secrets
    if ref["key"] in secret.get("stringData", {}):
        return str(secret["stringData"][ref["key"]])
    return base64.b64decode(secret["data"][ref["key"]]).decode()


def package_version(service: str) -> str:
    return tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())["project"]["version"]


def test_base_kustomization_lists_every_manifest_in_the_folder() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("service", sorted(PORTS))
def test_base_runs_each_service_on_its_compose_port_with_probes(service: str) -> None:
    objects = base_objects()
    port = PORTS[service]
    main = container(objects, service)
    assert main["image"] == compose()["services"][service]["image"]
    assert [p["containerPort"] for p in main["ports"]] == [port]
    assert main["ports"][0]["name"] == "http"
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(main["resources"][kind]) == {"cpu", "memory"}, f"{service}: resources.{kind}"

    deployment = find(objects, "Deployment", service)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    k8s_service = find(objects, "Service", service)
    assert k8s_service["spec"]["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]
    assert k8s_service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    hpa = find(objects, "HorizontalPodAutoscaler", service)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("service", sorted(PORTS))
def test_startup_probe_allows_at_least_the_compose_start_period(service: str) -> None:
    start_period = compose()["services"][service]["healthcheck"]["start_period"]
    assert start_period.endswith("s"), start_period
    probe = container(base_objects(), service)["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= int(start_period[:-1])


@pytest.mark.parametrize("service", sorted(PORTS))
def test_base_env_mirrors_compose(service: str) -> None:
    objects = base_objects()
    env = {entry["name"]: entry for entry in container(objects, service)["env"]}
    expected = compose_env(service)
    assert set(env) == set(expected), f"{service}: env names differ from docker-compose.yml"
    for name, value in expected.items():
        resolved = resolve_env(objects, env[name])
        if resolved is None:  # a Secret the overlays provide; its value is checked on the dev render
            assert compose()["services"][service]["environment"][name].startswith("${"), name
            continue
        assert resolved == value, f"{service}: {name}={resolved!r}, compose has {value!r}"


@pytest.mark.parametrize("store", sorted(STORES))
def test_stores_run_the_compose_images_on_persistent_volumes(store: str) -> None:
    objects = base_objects()
    port, data_path = STORES[store]
    main = container(objects, store, kind="StatefulSet")
    assert main["image"] == compose()["services"][store]["image"]
    assert port in {p["port"] for p in find(objects, "Service", store)["spec"]["ports"]}
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    claims = {
        c["metadata"]["name"] for c in find(objects, "StatefulSet", store)["spec"]["volumeClaimTemplates"]
    }
    assert any(mounts.get(claim) == data_path for claim in claims), f"{store}: {data_path} is not persistent"


@pytest.mark.parametrize("name", ["otel-collector", "jaeger"])
def test_tracing_runs_the_compose_images_behind_services(name: str) -> None:
    objects = base_objects()
    assert container(objects, name)["image"] == compose()["services"][name]["image"]
    assert find(objects, "Service", name)


def test_the_services_export_spans_to_the_in_cluster_collector() -> None:
    objects = base_objects()
    endpoint = find(objects, "ConfigMap", "rag-endpoints")["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    collector_ports = {p["port"] for p in find(objects, "Service", "otel-collector")["spec"]["ports"]}
    assert endpoint == "http://otel-collector:4318"
    assert 4318 in collector_ports
    config = yaml.safe_load(find(objects, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    assert config["exporters"]["otlp/traces"]["endpoint"] == "jaeger:4317"


def test_base_objects_match_the_kubernetes_schemas() -> None:
    for document in base_objects():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_to_objects_that_match_the_kubernetes_schemas(overlay: str) -> None:
    objects = rendered(overlay)
    namespace = f"rag-{overlay}"
    find(objects, "Namespace", namespace)
    for document in objects:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace, document["metadata"]["name"]
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "rag-platform"


@pytest.mark.parametrize("service", sorted(PORTS))
def test_dev_overlay_env_equals_compose_including_the_development_key(service: str) -> None:
    objects = rendered("dev")
    env = {entry["name"]: resolve_env(objects, entry) for entry in container(objects, service)["env"]}
    assert env == compose_env(service)
    assert container(objects, service)["image"] == compose()["services"][service]["image"]


@pytest.mark.parametrize("service", sorted(PORTS))
def test_prod_overlay_runs_versioned_images_and_at_least_two_pods(service: str) -> None:
    objects = rendered("prod")
    image = container(objects, service)["image"]
    assert image.endswith(f"/rag-platform/{service}:{package_version(service)}"), image
    assert find(objects, "Deployment", service)["spec"]["replicas"] >= 2
    assert find(objects, "HorizontalPodAutoscaler", service)["spec"]["minReplicas"] >= 2
    names = {entry["name"] for entry in container(objects, service)["env"]}
    assert set(compose_env(service)) <= names


def test_prod_gateway_runs_in_production_mode_with_secret_keys() -> None:
    objects = rendered("prod")
    env = {entry["name"]: entry for entry in container(objects, "gateway")["env"]}
    assert env["GATEWAY_ENVIRONMENT"]["value"] == "production"
    for name in ("GATEWAY_DEV_API_KEY", "GATEWAY_ADMIN_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "gateway-secrets", name
    assert not [o for o in objects if o["kind"] == "Secret"], "production secrets are never committed"
