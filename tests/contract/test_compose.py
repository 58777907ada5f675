"""docker-compose.yml and the services' Dockerfiles agree with the services themselves.

No Docker engine is needed: the files are read as text and compared with a port table, the
packages' `Settings` classes and the compose-spec JSON schema (check-jsonschema bundles it).
A service package that is not installed yet (llm, safety while they are being written) is left
out of the checks that import it; a service folder without a Dockerfile fails.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
READYZ_PORT = re.compile(r"https?://(?:127\.0\.0\.1|localhost):(\d+)/readyz")


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    env_prefix: str

    @property
    def module(self) -> str:
        return f"rag_{self.name}"

    @property
    def factory(self) -> str:
        return f"{self.module}.main:create_app"

    @property
    def directory(self) -> Path:
        return REPO / "services" / self.name

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"

    def __str__(self) -> str:
        return self.name


SERVICES = (
    Service("gateway", 8000, "GATEWAY_"),
    Service("orchestrator", 8001, "ORCHESTRATOR_"),
    Service("embedding", 8002, "EMBEDDING_"),
    Service("retrieval", 8003, "RETRIEVAL_"),
    Service("llm", 8004, "LLM_"),
    Service("safety", 8005, "SAFETY_"),
)
BY_NAME = {service.name: service for service in SERVICES}
# Ports the infrastructure containers listen on inside the compose network.
INFRA_PORTS = {
    "redis": {6379},
    "qdrant": {6333, 6334},
    "otel-collector": {4317, 4318},
    "jaeger": {4317, 4318, 16686},
    "prometheus": {9090},
    "grafana": {3000},
}
# Alternatives to `llm` under compose profiles; each answers on the network alias `llm`.
LLM_VARIANTS = {"llm-gpu": "gpu", "llm-openai": "openai"}
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
# Services every platform service calls, whether or not it waits for them at start-up.
EXPECTED_DEPENDENCIES = {
    "gateway": {"orchestrator", "redis"},
    "orchestrator": {"embedding", "retrieval", "llm", "safety", "redis"},
    "embedding": {"redis"},
    "retrieval": {"qdrant"},
    "llm": set(),
    "safety": set(),
}

IMPORTABLE = [s for s in SERVICES if importlib.util.find_spec(s.module) is not None]
WITH_DOCKERFILE = [s for s in SERVICES if s.dockerfile.is_file()]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def environment(definition: dict[str, Any]) -> dict[str, str]:
    """A compose `environment` in either form (mapping or list of NAME=value) as a dict."""
    env = definition.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def healthcheck_command(definition: dict[str, Any]) -> str:
    test = (definition.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, with comments dropped and continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        pending = ""
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, f"{path}: an instruction comes before the first FROM"
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def expand_build_args(stage: list[tuple[str, str]], arguments: str) -> str:
    """`arguments` with `$NAME` / `${NAME}` replaced by the defaults of the stage's ARG lines."""
    defaults = {}
    for name, arguments_of_arg in stage:
        if name == "ARG":
            variable, _, default = arguments_of_arg.partition("=")
            defaults[variable] = default.strip('"')
    return re.sub(r"\$\{?(\w+)\}?", lambda match: defaults.get(match.group(1), match.group(0)), arguments)


def final_stage(service: Service) -> list[tuple[str, str]]:
    assert service.dockerfile.is_file(), f"{service.dockerfile.relative_to(REPO)} is missing"
    return dockerfile_stages(service.dockerfile)[-1]


def arguments_of(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [arguments for name, arguments in stage if name == instruction]


def exec_form_cmd(service: Service) -> list[str]:
    cmds = arguments_of(final_stage(service), "CMD")
    assert len(cmds) == 1, f"{service}: the runtime stage needs exactly one CMD, found {len(cmds)}"
    try:
        cmd = json.loads(cmds[0])
    except json.JSONDecodeError:
        pytest.fail(f"{service}: CMD must be exec form (a JSON list), got {cmds[0]!r}")
    assert isinstance(cmd, list), f"{service}: CMD must be a JSON list"
    return cmd


def option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd and cmd.index(name) + 1 < len(cmd) else None


def test_every_service_directory_has_a_dockerfile() -> None:
    missing = [
        str(s.dockerfile.relative_to(REPO))
        for s in SERVICES
        if s.directory.is_dir() and not s.dockerfile.is_file()
    ]
    assert not missing, f"service folders without a Dockerfile: {missing}"


@pytest.mark.parametrize("service", WITH_DOCKERFILE, ids=str)
def test_dockerfile_exposes_serves_and_probes_the_service_port(service: Service) -> None:
    stage = final_stage(service)
    exposed = {
        int(port.split("/")[0]) for arguments in arguments_of(stage, "EXPOSE") for port in arguments.split()
    }
    assert exposed == {service.port}, f"{service}: EXPOSE {exposed}, expected {service.port}"

    cmd = exec_form_cmd(service)
    assert cmd[:3] == ["python", "-m", "rag_common.serve"], (
        f"{service}: CMD starts {cmd[:3]!r}, not the drain runner"
    )
    assert "--factory" in cmd, f"{service}: the runner needs --factory for create_app"
    assert service.factory in cmd, f"{service}: CMD does not start {service.factory}"
    assert option(cmd, "--host") == "0.0.0.0", f"{service}: uvicorn must listen on 0.0.0.0 in a container"
    assert option(cmd, "--port") == str(service.port), f"{service}: CMD --port {option(cmd, '--port')}"

    probes = [int(port) for hc in arguments_of(stage, "HEALTHCHECK") for port in READYZ_PORT.findall(hc)]
    assert probes == [service.port], (
        f"{service}: HEALTHCHECK probes {probes}, expected /readyz on {service.port}"
    )


@pytest.mark.parametrize("service", IMPORTABLE, ids=str)
def test_dockerfile_cmd_factory_is_importable(service: Service) -> None:
    cmd = exec_form_cmd(service)
    factory = option(cmd, "--factory")
    assert factory is not None, f"{service}: --factory names no app factory"
    module_name, _, attribute = factory.partition(":")
    factory_function = getattr(importlib.import_module(module_name), attribute, None)
    assert callable(factory_function), f"{service}: {factory} is not a callable"


@pytest.mark.parametrize("service", WITH_DOCKERFILE, ids=str)
def test_dockerfile_runs_as_non_root_with_a_readyz_healthcheck(service: Service) -> None:
    stage = final_stage(service)
    users = arguments_of(stage, "USER")
    assert users, f"{service}: the runtime stage has no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"{service}: USER {user} is root"
    assert any(user in arguments for arguments in arguments_of(stage, "RUN")), (
        f"{service}: USER {user} is not created in the runtime stage"
    )
    healthchecks = arguments_of(stage, "HEALTHCHECK")
    assert healthchecks, f"{service}: the runtime stage has no HEALTHCHECK"
    assert "/readyz" in healthchecks[-1], f"{service}: HEALTHCHECK must probe /readyz"


@pytest.mark.parametrize("service", WITH_DOCKERFILE, ids=str)
def test_dockerfile_installs_common_and_its_own_package_non_editable(service: Service) -> None:
    stages = dockerfile_stages(service.dockerfile)
    assert len(stages) >= 2, f"{service}: expected a builder stage and a runtime stage"
    copies = [arguments for stage in stages for arguments in arguments_of(stage, "COPY")]
    for source in ("libs/common", f"services/{service.name}"):
        assert any(arguments.split()[0] == source for arguments in copies), f"{service}: no COPY {source}"
    installs = [
        arguments
        for stage in stages
        for arguments in arguments_of(stage, "RUN")
        if "pip install" in arguments
    ]
    assert installs, f"{service}: no pip install"
    assert not any(re.search(r"\s(-e|--editable)\s", f" {arguments} ") for arguments in installs), (
        f"{service}: images install packages non-editable"
    )
    runtime_copies = arguments_of(stages[-1], "COPY")
    assert all("--from=" in arguments for arguments in runtime_copies), (
        f"{service}: the runtime stage copies only from the builder (the venv), not the source tree"
    )


@pytest.mark.parametrize("service", WITH_DOCKERFILE, ids=str)
def test_dockerfile_takes_torch_pinned_from_the_cpu_index(service: Service) -> None:
    # Build arguments count with their defaults: a GPU build may pass another index, the default is CPU.
    runs = [
        expand_build_args(stage, arguments)
        for stage in dockerfile_stages(service.dockerfile)
        for arguments in arguments_of(stage, "RUN")
    ]
    torch_installs = [arguments for arguments in runs if re.search(r"pip install\b.*\btorch\b", arguments)]
    for arguments in torch_installs:
        assert re.search(r"\btorch==[\w.]+", arguments), f"{service}: unpinned torch pulls a CUDA build"
        assert TORCH_CPU_INDEX in arguments, f"{service}: torch must come from {TORCH_CPU_INDEX}"

    requirements = tomllib.loads((service.directory / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    torch_pins = [r for r in requirements if re.match(r"torch\b", r)]
    if torch_pins:
        assert torch_installs, f"{service}: needs torch but the Dockerfile does not install the CPU build"
        pin = torch_pins[0].replace(" ", "")
        assert any(pin in arguments for arguments in torch_installs), (
            f"{service}: the Dockerfile's torch differs from pyproject.toml's {pin}"
        )


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_compose_builds_each_service_from_its_dockerfile(service: Service) -> None:
    definition = compose_service(service.name)
    assert definition.get("build") == {"context": ".", "dockerfile": f"services/{service.name}/Dockerfile"}
    assert definition.get("image") == f"rag-platform/{service.name}:latest"


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_compose_healthcheck_probes_the_service_readyz_port(service: Service) -> None:
    command = healthcheck_command(compose_service(service.name))
    probes = [int(port) for port in READYZ_PORT.findall(command)]
    assert probes == [service.port], (
        f"{service}: compose healthcheck probes {probes}, expected {service.port}"
    )


@pytest.mark.parametrize("service", IMPORTABLE, ids=str)
def test_compose_env_names_are_real_settings(service: Service) -> None:
    settings_class = importlib.import_module(f"{service.module}.settings").Settings
    assert settings_class.model_config.get("env_prefix") == service.env_prefix, (
        f"{service}: Settings reads {settings_class.model_config.get('env_prefix')!r}, not {service.env_prefix!r}"
    )
    known = {service.env_prefix + field.upper() for field in settings_class.model_fields}
    env = environment(compose_service(service.name))
    unknown = sorted(name for name in env if name.startswith(service.env_prefix) and name not in known)
    assert not unknown, f"{service}: compose sets {unknown}, which Settings does not read"


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_compose_env_has_no_other_service_prefix(service: Service) -> None:
    env = environment(compose_service(service.name))
    foreign = sorted(
        name
        for name in env
        for other in SERVICES
        if other is not service and name.startswith(other.env_prefix)
    )
    assert not foreign, f"{service}: {foreign} belong to another service and have no effect here"


def test_compose_urls_use_the_target_service_port() -> None:
    services = compose()["services"]
    problems = []
    for name, definition in services.items():
        for variable, value in environment(definition).items():
            if not variable.endswith(("_URL", "_ENDPOINT")) or "${" in value:
                continue
            url = urlsplit(value)
            if url.hostname not in services:
                problems.append(f"{name}: {variable}={value} names no compose service")
                continue
            expected = {BY_NAME[url.hostname].port} if url.hostname in BY_NAME else INFRA_PORTS[url.hostname]
            if url.port not in expected:
                problems.append(
                    f"{name}: {variable}={value} uses port {url.port}, expected {sorted(expected)}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_compose_service_waits_for_what_it_calls(service: Service) -> None:
    definition = compose_service(service.name)
    called = {
        urlsplit(value).hostname
        for variable, value in environment(definition).items()
        if variable.startswith(service.env_prefix) and variable.endswith("_URL")
    }
    depends_on = {"llm" if name in LLM_VARIANTS else name for name in definition.get("depends_on") or ()}
    expected = EXPECTED_DEPENDENCIES[service.name]
    assert called == expected, f"{service}: URLs point at {sorted(called)}, expected {sorted(expected)}"
    assert depends_on == expected, f"{service}: depends_on {sorted(depends_on)}, expected {sorted(expected)}"


def test_depends_on_waits_for_healthy_services() -> None:
    services = compose()["services"]
    problems = []
    for name, definition in services.items():
        depends_on = definition.get("depends_on") or {}
        if isinstance(depends_on, list):
            problems.append(f"{name}: depends_on is a list, so it waits only for start, not health")
            continue
        for target, condition in depends_on.items():
            if (condition or {}).get("condition") != "service_healthy":
                problems.append(f"{name} -> {target}: condition must be service_healthy")
            if target not in services:
                problems.append(f"{name} -> {target}: no such compose service")
            elif not healthcheck_command(services[target]):
                problems.append(f"{name} -> {target}: {target} has no healthcheck, so it never gets healthy")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_compose_service_exports_traces_to_the_collector(service: Service) -> None:
    env = environment(compose_service(service.name))
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector:4318"
    assert env.get("OTEL_SERVICE_NAME") == service.name


def test_compose_publishes_only_the_gateway_among_platform_services() -> None:
    published = {s.name for s in SERVICES if compose_service(s.name).get("ports")}
    assert published == {"gateway"}, f"published platform services: {sorted(published)}"
    assert compose_service("gateway")["ports"] == ["8000:8000"]


def run_compose_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_matches_the_compose_spec() -> None:
    result = run_compose_schema_check(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_a_misspelled_key(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["gateway"]["depend_on"] = broken["services"]["gateway"].pop("depends_on")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert run_compose_schema_check(path).returncode != 0


def test_orchestrator_waits_for_whichever_llm_variant_runs() -> None:
    depends_on = compose_service("orchestrator")["depends_on"]
    for name in ("llm", *LLM_VARIANTS):
        assert depends_on[name] == {"condition": "service_healthy", "required": False}, name


@pytest.mark.parametrize("variant", sorted(LLM_VARIANTS), ids=str)
def test_llm_variants_replace_llm_under_their_profile(variant: str) -> None:
    definition = compose_service(variant)
    default = compose_service("llm")
    assert definition["profiles"] == [LLM_VARIANTS[variant]]
    assert "profiles" not in default, "the default llm starts without a profile"
    assert definition["networks"] == {"default": {"aliases": ["llm"]}}
    assert definition["build"]["dockerfile"] == default["build"]["dockerfile"]
    assert healthcheck_command(definition) == healthcheck_command(default)
    env = environment(definition)
    assert env["OTEL_SERVICE_NAME"] == "llm", "traces and metrics stay under the llm service"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert not definition.get("ports")
    if importlib.util.find_spec("rag_llm") is not None:
        settings_class = importlib.import_module("rag_llm.settings").Settings
        known = {"LLM_" + field.upper() for field in settings_class.model_fields}
        unknown = sorted(name for name in env if name.startswith("LLM_") and name not in known)
        assert not unknown, f"{variant}: compose sets {unknown}, which the llm Settings does not read"


def test_gpu_profile_runs_transformers_on_a_reserved_gpu_with_a_mounted_model() -> None:
    definition = compose_service("llm-gpu")
    env = environment(definition)
    assert env["LLM_BACKEND"] == "transformers"
    mounts = {volume.rsplit(":", 2)[1]: volume for volume in definition["volumes"]}
    assert env["LLM_MODEL_PATH"] in mounts, "LLM_MODEL_PATH must be the mounted model folder"
    assert mounts[env["LLM_MODEL_PATH"]].endswith(":ro")
    devices = definition["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    args = definition["build"]["args"]
    assert args["LLM_EXTRAS"] == "[transformers]"
    dockerfile = BY_NAME["llm"].dockerfile.read_text()
    assert all(f"ARG {name}" in dockerfile for name in args), "every build arg is declared in the Dockerfile"


def test_openai_profile_takes_the_upstream_from_the_environment() -> None:
    env = environment(compose_service("llm-openai"))
    assert env["LLM_BACKEND"] == "openai"
    for name in ("LLM_OPENAI_BASE_URL", "LLM_OPENAI_API_KEY"):
        assert env[name].startswith(f"${{{name}"), f"{name} must come from the caller's environment"


def test_stores_keep_their_data_in_named_volumes() -> None:
    volumes = compose()["volumes"]
    for service, target in (
        ("redis", "/data"),
        ("qdrant", "/qdrant/storage"),
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
    ):
        named = {v.split(":")[0] for v in compose_service(service)["volumes"] if v.split(":")[1] == target}
        assert named, f"{service}: nothing is mounted on {target}"
        assert named <= set(volumes), f"{service}: {target} is not on a named volume"


def prometheus_targets() -> dict[str, list[str]]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
    }


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_prometheus_scrapes_every_service_metrics_on_its_port(service: Service) -> None:
    assert prometheus_targets().get(service.name) == [f"{service.name}:{service.port}"]


def test_prometheus_and_grafana_run_in_compose_with_their_provisioning() -> None:
    prometheus = compose_service("prometheus")
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert prometheus["ports"] == ["9090:9090"]
    grafana = compose_service("grafana")
    assert grafana["ports"] == ["3000:3000"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [datasource] = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert urlsplit(datasource["url"]).hostname == "prometheus"
    assert urlsplit(datasource["url"]).port in INFRA_PORTS["prometheus"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / "rag-platform.json").read_text())
    datasource_uids = {
        d["uid"]
        for d in yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
            "datasources"
        ]
    }
    expressions = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] in datasource_uids, panel["title"]
            expressions.append(target["expr"])
    return expressions


def test_dashboard_queries_only_metrics_that_rag_common_exports() -> None:
    from prometheus_client import REGISTRY

    import rag_common.metrics  # noqa: F401  (registers the metrics)

    exported = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    exported |= {family.name for family in REGISTRY.collect()}
    used = {
        name
        for expression in dashboard_expressions()
        for name in re.findall(r"\b((?:http|rag)_[a-z_]+)\b", expression)
    }
    assert used, "the dashboard queries no platform metric"
    # Families without samples yet (labelled metrics never used) appear only by family name.
    base = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    missing = sorted(name for name in base if name not in exported)
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"


def test_dashboard_covers_stage_latency_ttft_cache_hits_and_429s() -> None:
    expressions = "\n".join(dashboard_expressions())
    for needle in (
        "http_request_duration_seconds_bucket",
        "rag_time_to_first_token_seconds_bucket",
        "rag_cache_lookups_total",
        'status="429"',
    ):
        assert needle in expressions, needle
