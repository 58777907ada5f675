"""`python -m rag_devstack.openapi`: writes `openapi/<service>.json` for the six services.

Each document comes from the service's `create_app()` with its lifespan never started, so no model,
Redis or Qdrant is needed. The JSON is sorted and indented so a change reads as a small diff; each
written file is compared with the one it replaces and breaking changes are listed (see
docs/api-versioning.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import openapi_diff
from .topology import SERVICES

if TYPE_CHECKING:
    from fastapi import FastAPI

OPENAPI_DIR = Path("openapi")


def service_app(name: str) -> FastAPI:
    """The service's app from its factory; its lifespan (models, clients) is never started."""
    spec = next(s for s in SERVICES if s.name == name)
    module_name, factory_name = spec.factory.split(":")
    app: FastAPI = getattr(importlib.import_module(module_name), factory_name)()
    return app


def generate(name: str) -> dict[str, Any]:
    return service_app(name).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed(name: str, folder: Path = OPENAPI_DIR) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def write(name: str, folder: Path = OPENAPI_DIR) -> str:
    """Writes the service's document; returns a one-line account of how it changed."""
    document = generate(name)
    previous = committed(name, folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(render(document))
    if previous is None:
        return "new"
    if previous == document:
        return "unchanged"
    breaking = openapi_diff.breaking_changes(previous, document)
    if not breaking:
        return "changed, compatible"
    return "changed, BREAKING:\n    " + "\n    ".join(breaking)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag_devstack.openapi", description=__doc__)
    parser.add_argument("--out", type=Path, default=OPENAPI_DIR, help="folder to write into")
    parser.add_argument("services", nargs="*", default=[s.name for s in SERVICES])
    args = parser.parse_args(argv)
    for name in args.services:
        print(f"  openapi/{name}.json: {write(name, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
