"""`rag ingest FOLDER --collection NAME`: every .txt/.md/.html/.pdf/.docx under FOLDER, with progress."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from .ingest import ingest_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag", description="Client of the RAG platform.")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="ingest a folder of documents")
    ingest.add_argument("folder", type=Path)
    ingest.add_argument("--collection", default="default")
    ingest.add_argument("--url", default=os.getenv("RAG_URL", "http://127.0.0.1:8000"))
    ingest.add_argument("--api-key", default=os.getenv("RAG_API_KEY", "rag-dev-key"))
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder} is not a folder", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=120) as client:
        try:
            outcome = ingest_folder(client, args.folder, args.collection)
        except httpx.HTTPError as exc:
            print(f"cannot reach the gateway at {args.url}: {exc}", file=sys.stderr)
            return 1
    print(f"{outcome.documents} documents, {outcome.chunks} chunks ingested into '{args.collection}'.")
    for failure in outcome.failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if outcome.failed else 0
