"""Runs a service under uvicorn and drains it gracefully on SIGTERM or SIGINT.

`python -m rag_common.serve --factory rag_gateway.main:create_app --host 0.0.0.0 --port 8000`, the
arguments of the `uvicorn` command it replaces. uvicorn runs on uvloop and httptools when they are
installed (the gateway depends on both: together they cut its CPU per request by 7%, and
httptools refuses bare CR or LF and folded header lines with 400), else on asyncio and h11.

The first signal turns `/readyz` to 503 while the server keeps serving for `drain_delay_s`, so load
balancers and Kubernetes endpoints stop routing here; then uvicorn's own shutdown stops listening and
lets in-flight requests and streams finish for up to `drain_timeout_s`, cutting what is left. A second
signal exits at once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from uvicorn.importer import import_from_string

from rag_common.health import mark_draining
from rag_common.settings import PYTHON_GC_THRESHOLD, ServiceSettings

logger = logging.getLogger("rag_common.serve")

AppFactory = Callable[[ServiceSettings], FastAPI]
FORCED_EXIT = 1
STARTUP_FAILURE = 3


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a not-ready phase before its graceful shutdown."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        app: FastAPI,
        drain_delay_s: float,
        gc_young_threshold: int = PYTHON_GC_THRESHOLD,
    ) -> None:
        super().__init__(config)
        self.app = app
        self.drain_delay_s = drain_delay_s
        self.gc_young_threshold = gc_young_threshold
        self.drain_started_at: float | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        collect_less_often(self.gc_young_threshold)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's handler this one does not record the signal: uvicorn would raise it again
        # after a clean shutdown and the process would die by SIGTERM instead of exiting 0.
        if self.drain_started_at is not None:
            logger.warning("second signal: exiting now, in-flight requests are cut")
            self.should_exit = self.force_exit = True
            return
        logger.info(
            "draining: not ready, stop listening in %.1f s, then wait up to %.1f s for in-flight requests",
            self.drain_delay_s,
            self.config.timeout_graceful_shutdown or 0.0,
        )
        self.drain_started_at = time.monotonic()
        mark_draining(self.app)

    async def on_tick(self, counter: int) -> bool:
        started = self.drain_started_at
        if started is not None and time.monotonic() - started >= self.drain_delay_s:
            self.should_exit = True
        return await super().on_tick(counter)


def collect_less_often(young_threshold: int) -> None:
    """Young objects are collected every `young_threshold` allocations instead of Python's 700. Per-request
    garbage is freed by reference counting; the collector only looks for cycles, and at 700 it ran
    about once per request: gateway CPU per cache hit -19% at 20,000 (docs/benchmarks.md). Freezing
    the start-up heap as well gained nothing more, and would keep a swapped-out model's cycles."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


def serve(
    factory: AppFactory, settings: ServiceSettings, *, host: str, port: int, access_log: bool = True
) -> int:
    """Build the app from `settings`, serve it until drained, and return the process exit status."""
    app = factory(settings)
    # log_config=None keeps the JSON logging the app set up; uvicorn's default config would replace it.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s),  # uvicorn takes whole seconds
    )
    server = DrainingServer(
        config, app=app, drain_delay_s=settings.drain_delay_s, gc_young_threshold=settings.gc_young_threshold
    )
    server.run()
    if not server.started:
        return STARTUP_FAILURE
    return FORCED_EXIT if server.force_exit else 0


def settings_path_for(factory_path: str) -> str:
    """`rag_gateway.main:create_app` -> `rag_gateway.settings:Settings`, the layout every service has."""
    package = factory_path.partition(":")[0].rpartition(".")[0]
    if not package:
        raise SystemExit(f"cannot guess the settings class of {factory_path!r}; pass --settings")
    return f"{package}.settings:Settings"


def load_settings(settings_class: type[ServiceSettings]) -> ServiceSettings:
    """The settings from the environment; invalid ones exit naming each variable, without a traceback."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = str(settings_class.model_config.get("env_prefix") or "")
        problems = [
            f"  {prefix}{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            if error["loc"]
            else f"  {error['msg']}"
            for error in exc.errors()
        ]
        raise SystemExit("Invalid settings:\n" + "\n".join(problems)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag_common.serve", description=__doc__.splitlines()[0])
    parser.add_argument("factory", help="the app factory, e.g. rag_gateway.main:create_app")
    parser.add_argument(
        "--factory", dest="uvicorn_factory", action="store_true", help="as in uvicorn; implied"
    )
    parser.add_argument("--settings", help="its settings class; default <package>.settings:Settings")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    factory: AppFactory = import_from_string(args.factory)
    settings_class = import_from_string(args.settings or settings_path_for(args.factory))
    if not (isinstance(settings_class, type) and issubclass(settings_class, ServiceSettings)):
        raise SystemExit(f"{settings_class!r} is not a ServiceSettings subclass")
    settings = load_settings(settings_class)
    return serve(factory, settings, host=args.host, port=args.port, access_log=args.access_log)


if __name__ == "__main__":
    raise SystemExit(main())
