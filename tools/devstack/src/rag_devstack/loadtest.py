"""Runs the locust load test headless in its own process and reads back what it measured.

Locust runs on gevent, which must not patch the test process, so it is always a subprocess; its
CSV summary is the interface. Used by `tests/e2e/test_load.py` (short) and `bench/load/run.py` (long).
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parents[4] / "bench" / "load" / "locustfile.py"
PERCENTILES = ("50%", "90%", "99%")


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    failures: int
    requests_per_s: float
    percentiles_ms: dict[str, float]
    failure_messages: list[str]


def start_locust(
    host: str, *, tag: str, users: int, seconds: int, env: dict[str, str], folder: Path | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a headless run; `collect(process, prefix)` waits for it and returns the figures."""
    folder = folder or Path(tempfile.mkdtemp(prefix="rag-load-"))
    prefix = folder / tag
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--tags", tag, "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "30",
    ]  # fmt: skip
    log = (folder / f"{tag}.log").open("wb")
    process = subprocess.Popen(command, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT)
    return process, prefix


def collect(process: subprocess.Popen[bytes], prefix: Path, timeout_s: float) -> LoadResult:
    process.wait(timeout=timeout_s)
    with Path(f"{prefix}_stats.csv").open() as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    with Path(f"{prefix}_failures.csv").open() as failures:
        messages = [f"{row['Occurrences']} x {row['Error']}" for row in csv.DictReader(failures)]
    return LoadResult(
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        requests_per_s=float(total["Requests/s"]),
        percentiles_ms={p: float(total[p]) for p in PERCENTILES},
        failure_messages=messages,
    )


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def collect_sampling_rss(
    process: subprocess.Popen[bytes],
    prefix: Path,
    timeout_s: float,
    pids: dict[str, int],
    every_s: float = 0.5,
) -> tuple[LoadResult, dict[str, list[float]]]:
    """`collect`, sampling each process's resident memory every `every_s` while the run lasts."""
    samples: dict[str, list[float]] = {name: [] for name in pids}
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        for name, pid in pids.items():
            samples[name].append(rss_mb(pid))
        time.sleep(every_s)
    return collect(process, prefix, timeout_s=max(1.0, deadline - time.monotonic())), samples


def settled_rss_mb(samples: list[float]) -> float:
    """The median of the last third of a run's samples. Single readings swing: the safety service's
    RSS moves by tens of MB each way from one second to the next under load, while a leak moves the
    median."""
    return statistics.median(_last_third(samples))


def rss_growth_mb(warm_up: list[float], measured: list[float]) -> float:
    """How far the measured run's settled memory lies above the highest reading of the warm-up's
    last third: swings up to that peak are the allocator's, growth past it is not."""
    return settled_rss_mb(measured) - max(_last_third(warm_up))


def _last_third(samples: list[float]) -> list[float]:
    return samples[-max(1, len(samples) // 3) :]
