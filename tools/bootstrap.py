"""Creates `.venv` and installs every package of the workspace into it (editable), idempotently.

Run with any Python 3.11+: `python3 tools/bootstrap.py`. torch is pinned and installed first so that
no other package pulls a CUDA build.

llama-cpp-python compiles llama.cpp on install. On x86-64 it is built for AVX2 (x86-64-v3) instead of
the build machine's own instruction set: llama.cpp's AMX kernels, which a native build turns on for
Intel Sapphire Rapids and later, crash the first prompt (ggml-org/llama.cpp#20824). A `CMAKE_ARGS`
of your own (a CUDA build, say) replaces this default. It is compiled here, never taken from pip's
wheel cache, whose key ignores the build flags (a wheel cached from a native build crashed the tests),
and again only when the flags change (`.venv/.llama-cpp-cmake-args`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TORCH = "torch==2.13.0"
PACKAGES = [
    "libs/common",
    "services/embedding",
    "services/retrieval",
    "services/llm",
    "services/safety",
    "services/orchestrator",
    "services/gateway",
    "tools/devstack",
    "tools/cli",
]
LLAMA_CPP = "llama-cpp-python>=0.3"
LLAMA_CPP_FLAGS = VENV / ".llama-cpp-cmake-args"
X86_64_V3_LLAMA_CPP = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)


def build_environment() -> dict[str, str]:
    env = dict(os.environ)
    if platform.machine().lower() in {"x86_64", "amd64"}:
        env.setdefault("CMAKE_ARGS", X86_64_V3_LLAMA_CPP)
    return env


def pip(*args: str) -> None:
    python = VENV / "bin" / "python"
    command = [str(python), "-m", "pip", "--disable-pip-version-check", *args]
    subprocess.run(command, check=True, cwd=ROOT, env=build_environment())


def build_llama_cpp() -> None:
    flags = build_environment().get("CMAKE_ARGS", "")
    if LLAMA_CPP_FLAGS.exists() and LLAMA_CPP_FLAGS.read_text() == flags:
        return
    print(f"Compiling llama-cpp-python (a few minutes), CMAKE_ARGS={flags!r}")
    pip(
        "install",
        "--quiet",
        "--no-cache-dir",
        "--force-reinstall",
        "--no-deps",
        "--no-binary",
        "llama-cpp-python",
        LLAMA_CPP,
    )
    LLAMA_CPP_FLAGS.write_text(flags)


def main() -> int:
    if not (VENV / "bin" / "python").exists():
        print(f"Creating {VENV}")
        venv.create(VENV, with_pip=True)
    pip("install", "--quiet", "--upgrade", "pip")
    pip("install", "--quiet", TORCH)
    build_llama_cpp()
    editable = [arg for package in PACKAGES for arg in ("-e", package)]
    pip("install", "--quiet", TORCH, *editable, "-r", "requirements-dev.txt")
    (VENV / ".installed").touch()
    print("Environment ready: .venv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
