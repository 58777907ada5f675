"""The whole platform as real processes: Redis, the six services on free loopback ports, an OTLP receiver."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag_devstack.processes import free_port
from rag_devstack.stack import LocalStack, Rewire, start_local_redis, start_services
from rag_devstack.topology import SERVICES

from .otlp_receiver import OtlpReceiver

API_KEY = "e2e-test-key"
RATE_LIMIT_PER_MINUTE = 120


@dataclass
class Stack(LocalStack):
    otlp: OtlpReceiver


def _test_env(otlp: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "LLM_DEFAULT_MAX_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
    } | {f"{spec.name.upper()}_DRAIN_DELAY_S": "0" for spec in SERVICES}  # tests stop stacks often


@contextmanager
def running_stack(rewire: Rewire | None = None) -> Iterator[Stack]:
    """The whole stack on free ports; `rewire(ports, envs)` may change any service's environment first."""
    run_dir = Path(tempfile.mkdtemp(prefix="rag-e2e-"))
    otlp = OtlpReceiver(free_port()).start()
    stack = Stack(services={}, envs={}, redis=start_local_redis(run_dir), run_dir=run_dir, otlp=otlp)
    try:
        start_services(stack, api_key=API_KEY, extra_env=_test_env(otlp), rewire=rewire)
        yield stack
    finally:
        stack.stop()
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
