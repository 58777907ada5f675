"""Text out of uploaded files: .txt, .md, .html, .pdf, .docx. Bounded, so a bomb cannot exhaust memory."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import PurePath, PurePosixPath

from bs4 import BeautifulSoup
from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from rag_common.errors import UnprocessableContent, UnsupportedMediaType

MAX_PDF_PAGES = 2_000
MAX_DOCX_UNCOMPRESSED = 200 * 1_048_576
MAX_TEXT_CHARS = 20_000_000


def safe_name(filename: str | None) -> str:
    """The file's relative path without `..`, `.`, drive or root parts (it only ever names a document)."""
    parts = PurePosixPath((filename or "").replace("\\", "/")).parts
    kept = [p for p in parts if p not in ("", ".", "..", "/") and not p.endswith(":")]
    return "/".join(kept).lstrip(".")[-200:] or "upload"


def _decode(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnprocessableContent(f"'{name}' is not UTF-8 or UTF-16 text.", extra={"file": name})


def _html(data: bytes, name: str) -> str:
    soup = BeautifulSoup(_decode(data, name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return "\n".join(line.strip() for line in soup.get_text("\n").splitlines() if line.strip())


def _pdf(data: bytes, name: str) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UnprocessableContent(f"'{name}' has more than {MAX_PDF_PAGES} pages.", extra={"file": name})
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnprocessableContent(f"'{name}' is not a readable PDF.", extra={"file": name}) from exc


def _docx(data: bytes, name: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_DOCX_UNCOMPRESSED:
                raise UnprocessableContent(f"'{name}' unpacks to too much data.", extra={"file": name})
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise UnprocessableContent(f"'{name}' is not a readable .docx file.", extra={"file": name}) from exc
    return "\n".join(paragraph.text for paragraph in document.paragraphs if paragraph.text.strip())


EXTRACTORS: dict[str, Callable[[bytes, str], str]] = {
    ".txt": _decode,
    ".md": _decode,
    ".markdown": _decode,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}


def extract(filename: str | None, data: bytes) -> tuple[str, str]:
    """(safe file name, text). 415 for a type we cannot read, 422 for a corrupt or empty file."""
    name = safe_name(filename)
    extractor = EXTRACTORS.get(PurePath(name).suffix.lower())
    if extractor is None:
        supported = ", ".join(sorted(EXTRACTORS))
        raise UnsupportedMediaType(
            f"'{name}' is not a supported file type; send one of {supported}.", extra={"file": name}
        )
    text = extractor(data, name).strip()
    if not text:
        raise UnprocessableContent(f"'{name}' contains no text.", extra={"file": name})
    if len(text) > MAX_TEXT_CHARS:
        raise UnprocessableContent(
            f"'{name}' has more than {MAX_TEXT_CHARS} characters.", extra={"file": name}
        )
    return name, text
