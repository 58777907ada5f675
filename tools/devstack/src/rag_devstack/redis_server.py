"""A real Redis server for the local stack and the tests: found, installed if missing, started."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from .processes import StartupError, stop_pid


def redis_binary() -> str:
    """`redis-server` from PATH; installed with apt-get when missing and we are root on Debian/Ubuntu."""
    found = shutil.which("redis-server")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env)
        found = shutil.which("redis-server")
        if found:
            return found
    raise StartupError(
        "redis-server is not installed. Install it (apt-get install redis-server, brew install redis) "
        "or point GATEWAY_REDIS_URL / STACK_REDIS_URL at a running Redis."
    )


def is_up(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def stop(self) -> None:
        stop_pid(self.process.pid, timeout_s=5)
        self.process.wait(timeout=1)


def start_redis(port: int, data_dir: Path, log_path: Path, timeout_s: float = 10.0) -> RedisServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        # An append-only file, so keys, limits and jobs survive a Redis restart.
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = RedisServer(port=port, process=process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"redis-server exited with {process.returncode}; see {log_path}")
        if is_up(server.url):
            return server
        time.sleep(0.05)
    server.stop()
    raise StartupError(f"redis-server did not answer PING within {timeout_s:.0f} s; see {log_path}")
