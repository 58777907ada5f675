"""Creates `.venv` and installs every package of the workspace into it (editable), idempotently.

Run with any Python 3.11+: `python3 tools/bootstrap.py`. torch is pinned and installed first so that
no other package pulls a CUDA build.
"""

from __future__ import annotations

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


def pip(*args: str) -> None:
    python = VENV / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], check=True, cwd=ROOT)


def main() -> int:
    if not (VENV / "bin" / "python").exists():
        print(f"Creating {VENV}")
        venv.create(VENV, with_pip=True)
    pip("install", "--quiet", "--upgrade", "pip")
    pip("install", "--quiet", TORCH)
    editable = [arg for package in PACKAGES for arg in ("-e", package)]
    pip("install", "--quiet", TORCH, *editable, "-r", "requirements-dev.txt")
    (VENV / ".installed").touch()
    print("Environment ready: .venv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
