"""The whole platform as real processes on free loopback ports, for end-to-end tests and benchmarks.

    with local_stack(api_key="k", extra_env={"LLM_DEFAULT_MAX_TOKENS": "16"}) as stack:
        httpx.get(f"{stack.gateway_url}/healthz")

`rewire(ports, envs)` may change any service's environment before anything starts (e.g. to put a
fault-injecting proxy between the orchestrator and a leaf).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .processes import ServiceProcess, free_port, start_service, wait_ready
from .redis_server import RedisServer, start_redis
from .topology import LEAVES, SERVICES, new_internal_token, service_env

Rewire = Callable[[dict[str, int], dict[str, dict[str, str]]], None]
READY_TIMEOUT_S = 300.0
HOST = "127.0.0.1"


@dataclass
class LocalStack:
    services: dict[str, ServiceProcess]
    envs: dict[str, dict[str, str]]
    redis: RedisServer
    run_dir: Path

    @property
    def gateway_url(self) -> str:
        return self.services["gateway"].url

    def url(self, name: str) -> str:
        return self.services[name].url

    def restart(self, name: str) -> None:
        """Start a stopped service again on its port, as an operator would."""
        old = self.services[name]
        spec = next(s for s in SERVICES if s.name == name)
        self.services[name] = start_service(
            name, spec.factory, host=old.host, port=old.port, env=self.envs[name], log_path=old.log_path
        )
        wait_ready(self.services[name], READY_TIMEOUT_S)

    def restart_redis(self) -> None:
        """Start a stopped Redis again on its port with its data (append-only file) as it was."""
        self.redis = start_redis(self.redis.port, self.run_dir / "redis", self.run_dir / "logs" / "redis.log")

    def stop(self) -> None:
        """Gateway first, so streams finish before their upstreams go."""
        for service in reversed(list(self.services.values())):
            service.stop()
        self.redis.stop()


def start_services(
    stack: LocalStack, *, api_key: str, extra_env: dict[str, str] | None = None, rewire: Rewire | None = None
) -> None:
    """Start the six services into `stack`, leaves first, each wave waited for on `/readyz`."""
    ports = {spec.name: free_port() for spec in SERVICES}
    wiring = service_env(
        ports,
        host=HOST,
        data_dir=stack.run_dir / "data",
        redis_url=stack.redis.url,
        api_key=api_key,
        internal_token=new_internal_token(),
    )
    envs = {name: (extra_env or {}) | env for name, env in wiring.items()}
    if rewire is not None:
        rewire(ports, envs)
    stack.envs = envs
    for wave in (LEAVES, ("orchestrator",), ("gateway",)):
        for name in wave:
            spec = next(s for s in SERVICES if s.name == name)
            stack.services[name] = start_service(
                name,
                spec.factory,
                host=HOST,
                port=ports[name],
                env=envs[name],
                log_path=stack.run_dir / "logs" / f"{name}.log",
            )
        for name in wave:
            wait_ready(stack.services[name], READY_TIMEOUT_S)


def start_local_redis(run_dir: Path) -> RedisServer:
    return start_redis(free_port(), run_dir / "redis", run_dir / "logs" / "redis.log")


@contextmanager
def local_stack(
    *, api_key: str, extra_env: dict[str, str] | None = None, rewire: Rewire | None = None
) -> Iterator[LocalStack]:
    run_dir = Path(tempfile.mkdtemp(prefix="rag-stack-"))
    stack = LocalStack(services={}, envs={}, redis=start_local_redis(run_dir), run_dir=run_dir)
    try:
        start_services(stack, api_key=api_key, extra_env=extra_env, rewire=rewire)
        yield stack
    finally:
        stack.stop()
