"""`python -m rag_common.serve` drains on SIGTERM: a real process serving `drain_app`, signalled mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from rag_common.errors import PROBLEM_JSON
from rag_common.health import health_router, mark_draining
from rag_common.serve import FORCED_EXIT, settings_path_for
from rag_devstack.processes import ServiceProcess, free_port, wait_ready

TESTS = Path(__file__).parent


def start_drain_app(
    log_path: Path, *, delay_s: float, timeout_s: float, extra_env: dict[str, str] | None = None
) -> ServiceProcess:
    port = free_port()
    command = [sys.executable, "-m", "rag_common.serve", "--factory", "drain_app:create_app", "--settings"]
    command += ["drain_app:Settings", "--port", str(port), "--no-access-log"]
    env = (
        os.environ
        | {
            "PYTHONPATH": str(TESTS),
            "DRAINAPP_DRAIN_DELAY_S": str(delay_s),
            "DRAINAPP_DRAIN_TIMEOUT_S": str(timeout_s),
        }
        | (extra_env or {})
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return ServiceProcess(name="drain-app", port=port, host="127.0.0.1", log_path=log_path, process=process)


@pytest.fixture
def drain_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceProcess]:
    delay_s, timeout_s = request.param
    service = start_drain_app(tmp_path / "drain-app.log", delay_s=delay_s, timeout_s=timeout_s)
    try:
        wait_ready(service, timeout_s=60)
        yield service
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


async def read_stream(url: str, started: asyncio.Event) -> list[str]:
    """The SSE data lines of `url`, setting `started` once the first arrives."""
    events: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(line.removeprefix("data: "))
                started.set()
    return events


async def start_stream(service: ServiceProcess, events: int) -> asyncio.Task[list[str]]:
    started = asyncio.Event()
    task = asyncio.create_task(read_stream(f"{service.url}/stream?events={events}&interval_s=0.1", started))
    await asyncio.wait_for(started.wait(), timeout=10)
    return task


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)


async def wait_until_refused(url: str, timeout_s: float) -> None:
    """Until a request finds nobody listening; one caught as the listener closes is accepted by the
    kernel and then reset, unanswered (`ReadError`, or a disconnect): that also means it stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            await get(url)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{url} still accepted connections after {timeout_s} s")


async def wait_for_exit(service: ServiceProcess, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (code := service.process.poll()) is None:
        assert time.monotonic() < deadline, f"still running after {timeout_s} s:\n{service.log_tail()}"
        await asyncio.sleep(0.05)
    return code


@pytest.mark.parametrize("drain_app", [(1.0, 10.0)], indirect=True)
async def test_sigterm_turns_not_ready_then_stops_listening_and_the_stream_completes(
    drain_app: ServiceProcess,
) -> None:
    stream = await start_stream(drain_app, events=30)
    drain_app.process.send_signal(signal.SIGTERM)

    ready = await get(f"{drain_app.url}/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM_JSON
    assert ready.json()["detail"] == "draining"
    assert (await get(f"{drain_app.url}/ping")).status_code == 200, "still serving during the drain delay"

    await wait_until_refused(f"{drain_app.url}/ping", timeout_s=2.5)
    assert not stream.done(), "listening stopped only after the stream ended; the test proves nothing"
    events = await asyncio.wait_for(stream, timeout=10)
    assert events == [*map(str, range(30)), "[DONE]"]
    assert await wait_for_exit(drain_app, timeout_s=5) == 0, drain_app.log_tail()


@pytest.mark.parametrize("drain_app", [(0.0, 1.0)], indirect=True)
async def test_a_stream_still_running_after_the_drain_timeout_is_cut_and_the_process_exits(
    drain_app: ServiceProcess,
) -> None:
    stream = await start_stream(drain_app, events=200)
    drain_app.process.send_signal(signal.SIGTERM)

    assert await wait_for_exit(drain_app, timeout_s=6) == 0, drain_app.log_tail()
    with pytest.raises(httpx.RemoteProtocolError):
        await asyncio.wait_for(stream, timeout=5)
    assert "timeout graceful shutdown exceeded" in drain_app.log_tail()


@pytest.mark.parametrize("drain_app", [(30.0, 30.0)], indirect=True)
async def test_a_second_sigterm_exits_at_once(drain_app: ServiceProcess) -> None:
    stream = await start_stream(drain_app, events=600)
    drain_app.process.send_signal(signal.SIGTERM)
    assert (await get(f"{drain_app.url}/readyz")).status_code == 503

    drain_app.process.send_signal(signal.SIGTERM)
    assert await wait_for_exit(drain_app, timeout_s=5) == FORCED_EXIT, drain_app.log_tail()
    with pytest.raises(httpx.RemoteProtocolError):
        await asyncio.wait_for(stream, timeout=5)


async def test_once_started_young_objects_are_collected_less_often(
    tmp_path: Path,
) -> None:
    env = {"DRAINAPP_GC_YOUNG_THRESHOLD": "12345"}
    service = start_drain_app(tmp_path / "drain-app.log", delay_s=0, timeout_s=1, extra_env=env)
    try:
        wait_ready(service, timeout_s=60)
        collector = (await get(f"{service.url}/gc")).json()
    finally:
        service.process.kill()
        service.process.wait()
    assert collector == {"young_threshold": 12345}


async def test_draining_fails_readiness_but_not_liveness() -> None:
    app = FastAPI()
    app.include_router(health_router())
    mark_draining(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        ready, live = await client.get("/readyz"), await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json() | {"request_id": None, "trace_id": None} == {
        "type": "https://rag-platform.dev/problems/draining",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "draining",
        "instance": "/readyz",
        "request_id": None,
        "trace_id": None,
    }
    assert live.status_code == 200


def test_the_settings_class_is_found_beside_the_factory() -> None:
    assert settings_path_for("rag_gateway.main:create_app") == "rag_gateway.settings:Settings"


def test_invalid_settings_exit_naming_each_variable_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "demo_service.py").write_text(
        "from pydantic import Field, model_validator\n"
        "from pydantic_settings import SettingsConfigDict\n"
        "from rag_common.settings import ServiceSettings\n\n"
        "class Settings(ServiceSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='DEMO_')\n"
        "    batch_size: int = Field(default=1, ge=1)\n"
        "    max_wait_ms: float = 1.0\n\n"
        "def create_app(settings):\n"
        "    raise AssertionError('not reached')\n"
    )
    code = "from rag_common.serve import main\nraise SystemExit(main(['demo_service:create_app', '--settings', 'demo_service:Settings']))\n"
    env = os.environ | {"PYTHONPATH": str(tmp_path), "DEMO_BATCH_SIZE": "0", "DEMO_MAX_WAIT_MS": "soon"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "Invalid settings:",
        "  DEMO_BATCH_SIZE: Input should be greater than or equal to 1",
        "  DEMO_MAX_WAIT_MS: Input should be a valid number, unable to parse string as a number",
    ]
