"""`make bench`: run every benchmark in `bench/`, each bounded in time, and write one results table.

The table (benchmark, goal, measured, ratio against its in-run baseline, reached or not) goes between
the `bench:results` markers of `docs/benchmarks.md`, with the machine described. A benchmark that
fails or runs past its time limit is listed as such, never silently dropped. With `--only`, the
others keep the goals their last run recorded (marked "an earlier run").
Usage: .venv/bin/python bench/run_all.py [--only NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rag_devstack.bench import Goal, goals_path, read_goals

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...] = ()
    limit_s: int = 600


BENCHMARKS = (
    Benchmark("retrieval quality (CISI)", "retrieval/cisi_eval.py", limit_s=900),
    Benchmark("search latency", "retrieval/search_latency.py", ("--engines", "edge"), limit_s=600),
    Benchmark("ingestion of CISI through the gateway", "retrieval/ingest_cisi.py", limit_s=900),
    Benchmark(
        "embedding throughput", "embedding/throughput.py", ("--backend", "onnx-export", "torch"), limit_s=900
    ),
    Benchmark("llm streaming overhead", "llm/stream_overhead.py", limit_s=600),
    Benchmark("time to first token through the chain", "llm/chain_ttft.py", limit_s=600),
    Benchmark("safety checks", "safety/eval.py", limit_s=900),
    Benchmark("streaming output guard", "safety/stream_guard.py", limit_s=600),
    Benchmark("gateway overhead and cache hits", "gateway/overhead.py", limit_s=600),
    Benchmark("orchestration overhead", "orchestrator/overhead.py", limit_s=600),
    Benchmark("semantic answer cache", "cache/semantic.py", limit_s=600),
    Benchmark("A/B experiment variants", "experiments/compare.py", limit_s=900),
    Benchmark("load test (locust)", "load/run.py", limit_s=600),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    benchmark: Benchmark
    seconds: float | None
    status: str
    goals: list[Goal]


def earlier(benchmark: Benchmark) -> Outcome:
    """A benchmark not run now: the goals its last run left beside it, if any."""
    goals_file = goals_path(ROOT / "bench" / benchmark.script)
    if not goals_file.exists():
        return Outcome(benchmark, None, "not run", [])
    return Outcome(benchmark, None, "ok", read_goals(goals_file))


def run(benchmark: Benchmark) -> Outcome:
    script = ROOT / "bench" / benchmark.script
    goals_file = goals_path(script)
    goals_file.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"== {benchmark.name}: {benchmark.script} {' '.join(benchmark.args)}", flush=True)
    try:
        completed = subprocess.run(
            [sys.executable, str(script), *benchmark.args], cwd=ROOT, timeout=benchmark.limit_s, check=False
        )
        status = "ok" if completed.returncode == 0 else f"failed (exit {completed.returncode})"
    except subprocess.TimeoutExpired:
        status = f"stopped after {benchmark.limit_s} s"
    goals = read_goals(goals_file) if goals_file.exists() else []
    return Outcome(benchmark, time.monotonic() - started, status, goals)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{memory}, no GPU used, Python {platform.python_version()}"


def table(outcomes: list[Outcome]) -> str:
    lines = [
        f"Last `make bench`: {time.strftime('%Y-%m-%d')}, on {machine()}.",
        "",
        "| benchmark | goal | measured | ratio | reached |",
        "| --- | --- | --- | --- | --- |",
    ]
    for outcome in outcomes:
        took = f", {outcome.seconds:.0f} s" if outcome.seconds is not None else ", an earlier run"
        name = f"{outcome.benchmark.name} (`bench/{outcome.benchmark.script}`{took})"
        if outcome.status != "ok":
            lines.append(f"| {name} | - | {outcome.status} | - | **no** |")
        elif not outcome.goals:
            lines.append(f"| {name} | none (figures only) | see the script's results file | - | - |")
        for goal in outcome.goals:
            ratio = f"{goal.ratio:.2f}" if goal.ratio is not None else "-"
            lines.append(
                f"| {name} | {goal.goal} | {goal.measured} | {ratio} | {'yes' if goal.reached else '**no**'} |"
            )
    return "\n".join(lines)


def write_doc(results: str) -> None:
    text = DOC.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    if not rest:
        before, after = text.rstrip() + "\n\n## Results of the last `make bench`\n\n", "\n"
    DOC.write_text(f"{before}{START}\n{results}\n{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=None, help="Scripts to run, e.g. llm/chain_ttft.py")
    parser.add_argument("--list", action="store_true", help="List the benchmarks and exit.")
    args = parser.parse_args()
    if args.list:
        for benchmark in BENCHMARKS:
            print(f"{benchmark.script:32} {benchmark.name} (limit {benchmark.limit_s} s)")
        return
    outcomes = [run(b) if args.only is None or b.script in args.only else earlier(b) for b in BENCHMARKS]
    results = table(outcomes)
    print(results)
    write_doc(results)
    print(f"Wrote the results table to {DOC.relative_to(ROOT)}.")


if __name__ == "__main__":
    main()
