"""`python -m rag_devstack up|down|status`: the whole platform on loopback, no Docker."""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from . import redis_server
from .processes import ServiceProcess, StartupError, start_service, stop_pid, wait_ready
from .topology import LEAVES, SERVICES, new_internal_token, service_env


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STACK_", extra="ignore")

    host: str = "127.0.0.1"
    gateway_port: int = 8000
    orchestrator_port: int = 8001
    embedding_port: int = 8002
    retrieval_port: int = 8003
    llm_port: int = 8004
    safety_port: int = 8005
    redis_port: int = 6379
    redis_url: str | None = None
    run_dir: Path = Path(".run")
    api_key: str = "rag-dev-key"
    ready_timeout_s: float = 300.0

    def ports(self) -> dict[str, int]:
        return {spec.name: getattr(self, f"{spec.name}_port") for spec in SERVICES}

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ensure_redis(settings: StackSettings) -> tuple[str, int | None]:
    """A Redis URL to use, and the pid of the server we started (None if one was running)."""
    url = settings.redis_url or f"redis://{settings.host}:{settings.redis_port}/0"
    if redis_server.is_up(url):
        print(f"Using the Redis already running at {url}")
        return url, None
    if settings.redis_url:
        raise StartupError(f"STACK_REDIS_URL={url} does not answer PING.")
    server = redis_server.start_redis(
        settings.redis_port, settings.run_dir / "redis", settings.run_dir / "logs" / "redis.log"
    )
    print(f"Started redis-server on {server.url}")
    return server.url, server.process.pid


def _start(settings: StackSettings, name: str, env: dict[str, str]) -> ServiceProcess:
    spec = next(s for s in SERVICES if s.name == name)
    service = start_service(
        name,
        spec.factory,
        host=settings.host,
        port=settings.ports()[name],
        env=env,
        log_path=settings.run_dir / "logs" / f"{name}.log",
    )
    print(f"  starting {name:<12} {service.url}  (log: {service.log_path})")
    return service


def _launch(
    settings: StackSettings, redis_url: str, internal_token: str, started: list[ServiceProcess]
) -> None:
    envs = service_env(
        settings.ports(),
        host=settings.host,
        data_dir=settings.run_dir / "data",
        redis_url=redis_url,
        api_key=settings.api_key,
        internal_token=internal_token,
    )
    for wave in (LEAVES, ("orchestrator",), ("gateway",)):
        batch = [_start(settings, name, envs[name]) for name in wave]
        started.extend(batch)
        with ThreadPoolExecutor(len(batch)) as pool:
            list(pool.map(lambda s: wait_ready(s, settings.ready_timeout_s), batch))
        print(f"  ready: {', '.join(wave)}")


def up(settings: StackSettings) -> int:
    if settings.state_file.exists():
        state = json.loads(settings.state_file.read_text())
        if any(_alive(pid) for pid in state["pids"].values()):
            print("The stack is already running; `make down` stops it.")
            return 1
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started: list[ServiceProcess] = []
    redis_pid: int | None = None
    internal_token = new_internal_token()
    try:
        redis_url, redis_pid = _ensure_redis(settings)
        _launch(settings, redis_url, internal_token, started)
    except StartupError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr)
        for service in reversed(started):
            service.stop()
        if redis_pid:
            stop_pid(redis_pid)
        return 1
    # The token is kept for calling a service's own port directly (X-Internal-Token); .run is git-ignored.
    state = {
        "pids": {s.name: s.process.pid for s in started},
        "redis_pid": redis_pid,
        "internal_token": internal_token,
    }
    settings.state_file.write_text(json.dumps(state))
    print(banner(settings))
    return 0


def down(settings: StackSettings) -> int:
    if not settings.state_file.exists():
        print("Nothing to stop: the stack is not running (no .run/stack.json).")
        return 0
    state = json.loads(settings.state_file.read_text())
    for name, pid in reversed(list(state["pids"].items())):
        print(f"  stopping {name:<12} pid {pid}: {'stopped' if stop_pid(pid) else 'was not running'}")
    if state.get("redis_pid"):
        stop_pid(state["redis_pid"])
        print("  stopped redis-server")
    settings.state_file.unlink()
    return 0


def status(settings: StackSettings) -> int:
    if not settings.state_file.exists():
        print("The stack is not running.")
        return 0
    state = json.loads(settings.state_file.read_text())
    for name, pid in state["pids"].items():
        print(f"  {name:<12} pid {pid:<8} {'running' if _alive(pid) else 'DEAD'}")
    return 0


def banner(settings: StackSettings) -> str:
    gateway = f"http://{settings.host}:{settings.gateway_port}"
    key = settings.api_key
    return f"""
The RAG platform is up.
  Gateway:     {gateway}   (OpenAPI docs: {gateway}/docs)
  API key:     {key}   (development only)
  Logs:        {settings.run_dir}/logs/
  Stop it:     make down

Try it:
  curl -s {gateway}/v1/documents -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"collection": "demo", "documents": [{{"id": "sun", "text": "The Sun is a star at the centre of the Solar System. It holds 99.86 percent of the mass of the Solar System.", "metadata": {{"source": "astronomy.txt"}}}}]}}'

  curl -s {gateway}/v1/rag/query -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"collection": "demo", "question": "How much of the Solar System mass does the Sun hold?"}}'
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag_devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = StackSettings()
    return {"up": up, "down": down, "status": status}[args.command](settings)
