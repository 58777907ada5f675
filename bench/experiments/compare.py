"""An A/B experiment end to end: two variants compared on latency, completion tokens and grounding.

The whole stack runs as real processes. The llm service serves the offline SmolLM2 GGUF twice, under
two names with different context windows (2048 and 1024 tokens: the smaller one keeps fewer passages
of the packed prompt); the orchestrator splits traffic between them 50/50, sticky per user. Each CISI
question is asked through the gateway once by a user of each variant (paired, alternating order), so
the variants answer the same questions. The answer cache is off: every answer is generated.
Usage: .venv/bin/python bench/experiments/compare.py [--questions 6] [--documents 80] [--top-k 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rag_devstack.bench import Goal, record_goals
from rag_devstack.stack import local_stack
from rag_orchestrator.experiments import Experiment, Variant

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "retrieval"))
import cisi

KEY = "bench-key"
COLLECTION = "cisi-ab"
RESULTS = Path(__file__).with_name("RESULTS.md")
WARM_UP = "What is information retrieval?"
MODELS = {"ctx2048": 2048, "ctx1024": 1024}
EXPERIMENT = Experiment(
    name="context-window",
    sticky="user",
    variants=[Variant(name=name, weight=1, model=f"smollm2-{name}") for name in MODELS],
)
LLM_MODELS = [
    {"name": f"smollm2-{name}", "backend": "llamacpp", "context_window": n} for name, n in MODELS.items()
]
ENV = {
    "OTEL_SDK_DISABLED": "true",
    "LLM_N_THREADS": "1",
    "LLM_MODELS": json.dumps(LLM_MODELS),
    "ORCHESTRATOR_EXPERIMENTS": f"[{EXPERIMENT.model_dump_json()}]",
    "ORCHESTRATOR_CACHE_ENABLED": "false",
    "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
    "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "100000",
    "GATEWAY_TOKENS_PER_MINUTE": "100000000",
    "GATEWAY_TENANT_TOKENS_PER_MINUTE": "100000000",
}


@dataclass
class Figures:
    seconds: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    grounding: list[float] = field(default_factory=list)
    models: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    misrouted: int = 0
    refused: int = 0


def user_of(variant: str) -> str:
    """A user the experiment's hash assigns to `variant` (what the orchestrator will pick too)."""
    return next(
        f"bench-user-{i}" for i in range(1000) if EXPERIMENT.assign(f"bench-user-{i}").name == variant
    )


def ingest(client: httpx.Client, collection: cisi.Collection, documents: int) -> None:
    chosen = list(collection.documents.items())[:documents]
    body = {"collection": COLLECTION, "documents": [{"id": i, "text": text} for i, text in chosen]}
    client.post("/v1/documents", json=body).raise_for_status()


def ask(client: httpx.Client, question: str, user: str, variant: str, figures: Figures, top_k: int) -> None:
    body = {"collection": COLLECTION, "question": question, "user": user, "top_k": top_k, "max_tokens": 96}
    started = time.perf_counter()
    response = client.post("/v1/rag/query", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code == 400:  # input safety refused the question: the same for every variant
        figures.refused += 1
        return
    if response.status_code != 200:
        figures.errors.append(f"{response.status_code} {response.json().get('detail', '')}"[:200])
        return
    answer = response.json()
    figures.misrouted += answer.get("variant") != variant
    figures.seconds.append(elapsed)
    figures.tokens.append(answer["usage"]["completion_tokens"])
    figures.grounding.append((answer.get("grounding") or {}).get("score", 0.0))
    figures.models.add(answer["model"])


def compare(client: httpx.Client, questions: list[str], top_k: int) -> dict[str, Figures]:
    figures = {name: Figures() for name in MODELS}
    users = {name: user_of(name) for name in MODELS}
    for name in MODELS:  # warm-up: each model's first call pages its weights in
        ask(client, WARM_UP, users[name], name, Figures(), top_k)
    for i, question in enumerate(questions):
        order = list(MODELS) if i % 2 == 0 else list(reversed(MODELS))
        for name in order:
            ask(client, question, users[name], name, figures[name], top_k)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=6, help="asked once per variant")
    parser.add_argument("--documents", type=int, default=80, help="CISI documents ingested")
    parser.add_argument("--top-k", type=int, default=8, help="passages offered; the 1024 window keeps fewer")
    args = parser.parse_args()
    collection = cisi.load()
    questions = [" ".join(q.split()[:60]) for q in list(collection.queries.values())[: args.questions]]
    with local_stack(api_key=KEY, extra_env=ENV) as stack:
        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=stack.gateway_url, timeout=300, headers=auth) as client:
            ingest(client, collection, args.documents)
            figures = compare(client, questions, args.top_k)
    report(figures, args)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=10)[q // 10 - 1] if len(values) > 1 else values[0]


def report(figures: dict[str, Figures], args: argparse.Namespace) -> None:
    lines = [
        f"Experiment `{EXPERIMENT.name}`: {args.questions} CISI questions asked once per variant through "
        f"the gateway (paired, alternating order), {args.documents} documents, top_k {args.top_k}, "
        "max_tokens 96, answer cache off; SmolLM2-135M GGUF, 1 llama.cpp thread, 2-core machine.",
        "",
        "| variant | model | answers | refused (input safety) | errors | latency p50 s | p90 s "
        "| completion tokens (mean) | grounding score (mean) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in figures.items():
        if not f.seconds:
            lines.append(f"| {name} | - | 0 | {f.refused} | {len(f.errors)} | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {', '.join(sorted(f.models))} | {len(f.seconds)} | {f.refused} | {len(f.errors)} "
            f"| {statistics.median(f.seconds):.2f} | {percentile(f.seconds, 90):.2f} "
            f"| {statistics.mean(f.tokens):.1f} | {statistics.mean(f.grounding):.3f} |"
        )
    clean = all(f.seconds and not f.errors and not f.misrouted for f in figures.values())
    summary = "; ".join(
        f"{name} p50 {statistics.median(f.seconds):.2f} s, {statistics.mean(f.tokens):.0f} tokens, "
        f"grounding {statistics.mean(f.grounding):.2f}"
        for name, f in figures.items()
        if f.seconds
    )
    misrouted = sum(f.misrouted for f in figures.values())
    goals = [
        Goal("variants compared on latency, tokens and grounding (both answered, no errors)", summary, clean),
        Goal("every answer came from its user's sticky variant", f"{misrouted} misrouted", misrouted == 0),
    ]
    lines += ["", *(f"- {g.goal}: {g.measured} ({'reached' if g.reached else 'NOT reached'})" for g in goals)]
    lines += [f"- error ({name}): {error}" for name, f in figures.items() for error in f.errors]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text("# A/B experiment: two variants compared\n\n" + text + "\n")
    record_goals(__file__, goals)


if __name__ == "__main__":
    main()
