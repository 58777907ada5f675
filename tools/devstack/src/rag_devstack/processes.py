"""Starting a service as a real process (`python -m rag_common.serve`) and waiting until it is ready."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

# SIGKILL only after the services' default drain (`drain_delay_s` 2 s + `drain_timeout_s` 20 s) had its
# time: in-flight requests and streams finish when a service or the stack is stopped.
STOP_TIMEOUT_S = 30.0


class StartupError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    name: str
    port: int
    host: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        stop_pid(self.process.pid, timeout_s)
        self.process.wait(timeout=1)


def start_service(
    name: str, factory: str, *, host: str, port: int, env: dict[str, str], log_path: Path
) -> ServiceProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "rag_common.serve", "--factory", factory]
    command += ["--host", host, "--port", str(port), "--no-access-log"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return ServiceProcess(name=name, port=port, host=host, log_path=log_path, process=process)


def wait_ready(service: ServiceProcess, timeout_s: float = 180.0) -> None:
    """Poll `/readyz` with backoff; fail early, with the log, if the process exits."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise StartupError(
                    f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
                )
            try:
                if client.get(f"{service.url}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    raise StartupError(f"{service.name} was not ready after {timeout_s:.0f} s:\n{service.log_tail()}")


def stop_pid(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then SIGKILL after `timeout_s`; False when no such process was running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _reap(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _reap(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
