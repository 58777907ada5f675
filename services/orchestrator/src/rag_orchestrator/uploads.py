"""Uploaded files to documents: every file must be readable, or nothing of the upload is ingested."""

from __future__ import annotations

import json

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from rag_common.contracts import DocumentIn, FilterValue
from rag_common.errors import UnprocessableContent

from .extraction import extract

MAX_FILES = 1000


def parse_metadata(raw: str | None) -> dict[str, FilterValue]:
    if not raw:
        return {}
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UnprocessableContent("metadata: must be a JSON object.") from exc
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str | int | float | bool) for v in metadata.values()
    ):
        raise UnprocessableContent("metadata: must be a JSON object of strings, numbers or booleans.")
    return metadata


async def documents_from(files: list[UploadFile], metadata: dict[str, FilterValue]) -> list[DocumentIn]:
    """One document per file, its id and `source` the file's relative path."""
    if not files:
        raise UnprocessableContent("files: send at least one file.")
    if len(files) > MAX_FILES:
        raise UnprocessableContent(f"files: at most {MAX_FILES} files per upload.")
    documents = []
    for upload in files:
        name, text = await run_in_threadpool(extract, upload.filename, await upload.read())
        documents.append(DocumentIn(id=name, text=text, metadata=metadata | {"source": name}))
    return documents
