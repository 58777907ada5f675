"""The whole platform as real processes: Redis, the six services on free loopback ports, an OTLP receiver."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.redis_server import RedisServer, start_redis
from rag_devstack.topology import LEAVES, SERVICES, service_env

from .otlp_receiver import OtlpReceiver

API_KEY = "e2e-test-key"
RATE_LIMIT_PER_MINUTE = 120
READY_TIMEOUT_S = 300.0


@dataclass
class Stack:
    services: dict[str, ServiceProcess]
    envs: dict[str, dict[str, str]]
    redis: RedisServer
    otlp: OtlpReceiver
    run_dir: Path

    @property
    def gateway_url(self) -> str:
        return self.services["gateway"].url

    def restart(self, name: str) -> None:
        """Start a stopped service again on its port, as an operator would."""
        old = self.services[name]
        spec = next(s for s in SERVICES if s.name == name)
        self.services[name] = start_service(
            name, spec.factory, host=old.host, port=old.port, env=self.envs[name], log_path=old.log_path
        )
        wait_ready(self.services[name], READY_TIMEOUT_S)


def _start_all(stack: Stack) -> None:
    run_dir, otlp, redis = stack.run_dir, stack.otlp, stack.redis
    ports = {spec.name: free_port() for spec in SERVICES}
    common = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "LLM_DEFAULT_MAX_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
    }
    envs = {
        name: common | env
        for name, env in service_env(
            ports, host="127.0.0.1", data_dir=run_dir / "data", redis_url=redis.url, api_key=API_KEY
        ).items()
    }
    stack.envs = envs
    for wave in (LEAVES, ("orchestrator",), ("gateway",)):
        for name in wave:
            spec = next(s for s in SERVICES if s.name == name)
            stack.services[name] = start_service(
                name,
                spec.factory,
                host="127.0.0.1",
                port=ports[name],
                env=envs[name],
                log_path=run_dir / "logs" / f"{name}.log",
            )
        for name in wave:
            wait_ready(stack.services[name], READY_TIMEOUT_S)


@contextmanager
def running_stack() -> Iterator[Stack]:
    run_dir = Path(tempfile.mkdtemp(prefix="rag-e2e-"))
    otlp = OtlpReceiver(free_port()).start()
    redis = start_redis(free_port(), run_dir / "redis", run_dir / "logs" / "redis.log")
    stack = Stack(services={}, envs={}, redis=redis, otlp=otlp, run_dir=run_dir)
    try:
        _start_all(stack)
        yield stack
    finally:
        for service in reversed(list(stack.services.values())):
            service.stop()
        redis.stop()
        otlp.stop()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack() as shared:
        yield shared


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack of its own, for tests that must not see what other modules did to the shared one."""
    with running_stack() as fresh:
        yield fresh


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the tail of every service log to the report."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    stack_fixture = funcargs.get("stack") or funcargs.get("own_stack")
    if report.failed and isinstance(stack_fixture, Stack):
        for name, service in stack_fixture.services.items():
            report.sections.append((f"{name} log", service.log_tail(30)))
    return report


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
