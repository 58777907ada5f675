"""Real processes for tests: a free loopback port, and llama.cpp's own OpenAI-compatible server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rag_llm.backends.llamacpp import default_model_path

UPSTREAM_MODEL = "smollm2-upstream"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True, slots=True)
class RunningServer:
    base_url: str
    log: Path


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path, deadline_s: float) -> None:
    """Poll `url` with a growing delay until it answers 200; fail with the server's log otherwise."""
    deadline, delay = time.monotonic() + deadline_s, 0.05
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(delay)  # readiness polling with backoff, not a fixed wait
            delay = min(delay * 2, 1.0)
    raise TimeoutError(f"llama_cpp.server not ready after {deadline_s} s:\n{log.read_text()}")


@contextmanager
def llama_cpp_server(folder: Path, *, deadline_s: float = 120.0) -> Iterator[RunningServer]:
    """`python -m llama_cpp.server` with the packaged SmolLM2 GGUF on a free port; killed on exit."""
    port, log = free_port(), folder / "llama_cpp_server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(default_model_path()), "--model_alias", UPSTREAM_MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(process, f"{base_url}/models", log, deadline_s)
        yield RunningServer(base_url=base_url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
