"""The six services, their start order and the environment that wires them together."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    factory: str
    default_port: int


# Leaves first, so every service finds its upstreams ready.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("embedding", "rag_embedding.main:create_app", 8002),
    ServiceSpec("retrieval", "rag_retrieval.main:create_app", 8003),
    ServiceSpec("llm", "rag_llm.main:create_app", 8004),
    ServiceSpec("safety", "rag_safety.main:create_app", 8005),
    ServiceSpec("orchestrator", "rag_orchestrator.main:create_app", 8001),
    ServiceSpec("gateway", "rag_gateway.main:create_app", 8000),
)
LEAVES = ("embedding", "retrieval", "llm", "safety")
INTERNAL_TOKEN_ENV = "RAG_INTERNAL_TOKEN"


def new_internal_token() -> str:
    """A fresh shared token for one run of the stack: internal services refuse calls without it."""
    return secrets.token_urlsafe(32)


def service_env(
    ports: dict[str, int],
    *,
    host: str,
    data_dir: Path,
    redis_url: str,
    api_key: str,
    internal_token: str,
) -> dict[str, dict[str, str]]:
    """Per service, the environment variables that point it at its neighbours."""

    def url(name: str) -> str:
        return f"http://{host}:{ports[name]}"

    wiring = {
        "embedding": {"EMBEDDING_REDIS_URL": redis_url},
        "retrieval": {"RETRIEVAL_QDRANT_PATH": str(data_dir / "qdrant")},
        "llm": {},
        "safety": {},
        "orchestrator": {
            "ORCHESTRATOR_EMBEDDING_URL": url("embedding"),
            "ORCHESTRATOR_RETRIEVAL_URL": url("retrieval"),
            "ORCHESTRATOR_LLM_URL": url("llm"),
            "ORCHESTRATOR_SAFETY_URL": url("safety"),
            "ORCHESTRATOR_REDIS_URL": redis_url,
        },
        "gateway": {
            "GATEWAY_ORCHESTRATOR_URL": url("orchestrator"),
            "GATEWAY_REDIS_URL": redis_url,
            "GATEWAY_DEV_API_KEY": api_key,
        },
    }
    return {name: {INTERNAL_TOKEN_ENV: internal_token} | env for name, env in wiring.items()}
