"""What a benchmark reports to `make bench`: its goals, the figure measured, and whether it was reached.

Each script in `bench/` calls `record_goals(__file__, [...])` at the end; `bench/run_all.py` collects
the files written during its run into the results table of `docs/benchmarks.md`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIX = ".goals.json"
# Environment for a benchmark's local stack: no rate limit in the way, no tracing cost, one llama.cpp
# thread (the machine's other core runs the load generator).
BENCH_STACK_ENV = {
    "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
    "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "100000000",
    "GATEWAY_TOKENS_PER_MINUTE": "100000000000",
    "GATEWAY_TENANT_TOKENS_PER_MINUTE": "100000000000",
    "OTEL_SDK_DISABLED": "true",
    "LLM_N_THREADS": "1",
}


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal of a benchmark: `ratio` is measured / in-run baseline when the goal is a ratio."""

    goal: str
    measured: str
    reached: bool
    ratio: float | None = None


def goals_path(script: str | Path) -> Path:
    path = Path(script)
    return path.with_name(path.stem + SUFFIX)


def record_goals(script: str | Path, goals: list[Goal]) -> Path:
    """Write the goals next to the script (`<script>.goals.json`) and return the file."""
    path = goals_path(script)
    plain = [asdict(goal) | {"reached": bool(goal.reached), "ratio": _number(goal.ratio)} for goal in goals]
    path.write_text(json.dumps(plain, indent=2) + "\n")
    return path


def _number(value: float | None) -> float | None:
    """numpy scalars (bool_, float64) are not JSON: benchmarks compute with them."""
    return None if value is None else float(value)


def read_goals(path: Path) -> list[Goal]:
    return [Goal(**item) for item in json.loads(path.read_text())]
