"""Reader of the CISI test collection (`.I` / `.T` / `.A` / `.W` / `.X` records)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "eval" / "cisi"


@dataclass(frozen=True)
class Collection:
    documents: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _records(path: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    field = ""
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith(".I "):
            records.append({"I": line[3:].strip()})
            field = ""
        elif len(line) == 2 and line.startswith("."):
            field = line[1]
            records[-1].setdefault(field, "")
        elif field in ("T", "W"):
            records[-1][field] += line.strip() + " "
    return records


def load(folder: Path = DEFAULT_DIR) -> Collection:
    documents = {
        r["I"]: (r.get("T", "") + "\n" + r.get("W", "")).strip() for r in _records(folder / "CISI.ALL")
    }
    queries = {r["I"]: r.get("W", "").strip() for r in _records(folder / "CISI.QRY")}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in (folder / "CISI.REL").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            qrels[parts[0]][parts[1]] = 1
    judged = {q: queries[q] for q in qrels if q in queries}
    return Collection(documents=documents, queries=judged, qrels=dict(qrels))
