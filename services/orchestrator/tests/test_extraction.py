from __future__ import annotations

import io
import zipfile

import pytest
from docx import Document

from rag_common.errors import UnprocessableContent, UnsupportedMediaType
from rag_orchestrator.extraction import extract, safe_name


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica, offsets computed so any reader accepts it."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def minimal_docx(*paragraphs: str) -> bytes:
    document = Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.txt", "Plain text, with ünïcode.".encode(), "Plain text, with ünïcode."),
        ("readme.md", b"# Title\n\nSome *markdown*.", "# Title\n\nSome *markdown*."),
        (
            "page.html",
            b"<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>Head</h1><p>Body text</p></body></html>",
            "Head\nBody text",
        ),
        ("report.pdf", minimal_pdf("Hello PDF world"), "Hello PDF world"),
        (
            "letter.docx",
            minimal_docx("First paragraph.", "Second paragraph."),
            "First paragraph.\nSecond paragraph.",
        ),
    ],
)
def test_supported_files_give_their_text(name: str, data: bytes, expected: str) -> None:
    assert extract(name, data) == (name, expected)


def test_an_unsupported_type_is_415_naming_the_file() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"'image\.png' is not a supported file type"):
        extract("image.png", b"\x89PNG")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.pdf", b"%PDF-1.4 garbage"),
        ("broken.docx", b"PK not really a zip"),
        ("empty.txt", b"   \n"),
        ("binary.txt", b"\xff\xfe\x00\xd8"),
    ],
)
def test_corrupt_or_empty_files_are_422_naming_the_file(name: str, data: bytes) -> None:
    with pytest.raises(UnprocessableContent) as caught:
        extract(name, data)
    assert caught.value.extra["file"] == name


def test_a_zip_bomb_disguised_as_docx_is_refused_before_unpacking() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"0" * (201 * 1_048_576))
    with pytest.raises(UnprocessableContent, match="unpacks to too much data"):
        extract("bomb.docx", buffer.getvalue())


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("../../etc/passwd.txt", "etc/passwd.txt"),
        ("C:\\Users\\x\\doc.md", "Users/x/doc.md"),
        ("/abs/./notes/a.md", "abs/notes/a.md"),
        ("..", "upload"),
        (None, "upload"),
    ],
)
def test_traversal_parts_of_file_names_are_dropped(given: str | None, safe: str) -> None:
    assert safe_name(given) == safe
