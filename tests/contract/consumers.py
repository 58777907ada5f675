"""Every call one service makes to another: the registry the consumer contract tests check.

The orchestrator's calls are those of `rag_orchestrator/adapters/http_clients.py`; the gateway's are
the forwards of its routes, each to the same path on the orchestrator. `calls_in_source` reads the
calls back from the code, so a call added there without an entry here fails the tests.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rag_common import contracts as c
from rag_devstack import openapi_diff

REPO = Path(__file__).resolve().parents[2]
TENANT = frozenset({"X-Tenant-ID"})
HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "PATCH"}
_PARAMETER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Call:
    consumer: str
    provider: str
    method: str
    path: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    headers: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str]:
        return self.method, normalize(self.path)

    def __str__(self) -> str:
        return f"{self.consumer} -> {self.provider}: {self.method} {self.path}"


def _orchestrator(
    provider: str, *calls: tuple[str, str, type[BaseModel] | None, type[BaseModel] | None]
) -> list[Call]:
    return [Call("orchestrator", provider, *call) for call in calls]


def _gateway(*calls: tuple[str, str, type[BaseModel] | None, type[BaseModel] | None]) -> list[Call]:
    return [Call("gateway", "orchestrator", *call, headers=TENANT) for call in calls]


CALLS: tuple[Call, ...] = (
    *_orchestrator("embedding", ("POST", "/v1/embeddings", c.EmbeddingRequest, c.EmbeddingResponse)),
    *_orchestrator(
        "retrieval",
        ("POST", "/v1/collections", c.CollectionCreate, c.CollectionInfo),
        ("GET", "/v1/collections", None, c.CollectionList),
        ("DELETE", "/v1/collections/{name}", None, None),
        ("PUT", "/v1/collections/{name}/points", c.UpsertRequest, c.UpsertResponse),
        ("POST", "/v1/collections/{name}/points/delete", c.DeleteRequest, c.DeleteResponse),
        ("POST", "/v1/collections/{name}/points/scroll", c.ScrollRequest, c.ScrollResponse),
        ("GET", "/v1/collections/{name}/documents", None, c.DocumentCounts),
        ("POST", "/v1/collections/{name}/search", c.SearchRequest, c.SearchResponse),
        ("GET", "/v1/collections/{name}", None, c.CollectionInfo),
        ("POST", "/v1/collections/{name}/replace", c.CollectionReplace, c.CollectionInfo),
        ("PUT", "/v1/collections/{name}/write-lock", c.WriteLock, c.CollectionInfo),
        ("DELETE", "/v1/collections/{name}/write-lock", None, c.CollectionInfo),
    ),
    *_orchestrator(
        "llm",
        ("GET", "/v1/models", None, c.ModelList),
        ("POST", "/v1/grounded/completions", c.GroundedCompletionRequest, c.ChatCompletionResponse),
        ("POST", "/v1/chat/completions", c.ChatCompletionRequest, c.ChatCompletionResponse),
    ),
    *_orchestrator(
        "safety",
        ("POST", "/v1/check", c.SafetyCheckRequest, c.SafetyVerdict),
        ("POST", "/v1/check/passages", c.PassageScreeningRequest, c.PassageScreening),
        ("POST", "/v1/grounding", c.GroundingRequest, c.Grounding),
    ),
    *_orchestrator("embedding", ("POST", "/v1/rerank", c.RerankRequest, c.RerankResponse)),
    *_gateway(
        ("POST", "/v1/rag/query", c.RagQuery, c.RagAnswer),
        ("POST", "/v1/documents", c.IngestRequest, c.IngestResponse),
        ("POST", "/v1/chat/completions", c.ChatCompletionRequest, c.ChatCompletionResponse),
        ("POST", "/v1/documents/jobs", c.IngestRequest, c.JobStatus),
        ("POST", "/v1/documents/upload", None, c.JobStatus),
        ("GET", "/v1/documents/jobs/{job_id}", None, c.JobStatus),
        ("POST", "/v1/collections", c.NewCollection, c.CollectionInfo),
        ("GET", "/v1/collections", None, c.CollectionList),
        ("DELETE", "/v1/collections/{collection}", None, None),
        ("GET", "/v1/collections/{collection}/documents", None, c.DocumentCounts),
        ("GET", "/v1/collections/{collection}/documents/{document_id}", None, c.DocumentDetail),
        ("DELETE", "/v1/collections/{collection}/documents/{document_id}", None, c.DocumentDeleted),
        ("POST", "/v1/embeddings", c.EmbeddingRequest, c.EmbeddingResponse),
        ("GET", "/v1/models", None, c.ModelList),
        ("POST", "/v1/rag/jobs", c.RagJobRequest, c.GenerationJobStatus),
        ("GET", "/v1/rag/jobs/{job_id}", None, c.GenerationJobStatus),
        ("GET", "/v1/rag/jobs/{job_id}/result", None, c.RagAnswer),
        ("POST", "/v1/collections/{collection}/reembed", None, c.ReembedStatus),
        ("GET", "/v1/collections/{collection}/reembed/{job_id}", None, c.ReembedStatus),
    ),
)
SOURCES = {
    "orchestrator": [REPO / "services/orchestrator/src/rag_orchestrator/adapters/http_clients.py"],
    "gateway": sorted((REPO / "services/gateway/src/rag_gateway").glob("*.py")),
}


def normalize(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def _path_text(node: ast.expr, assigned: dict[str, ast.expr]) -> str | None:
    """The path an argument spells, `{}` for each interpolation; None when it is no `/v1` path."""
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    else:
        return None
    return text if text.startswith("/v1") else None


def _calls_in_function(function: ast.AST) -> set[tuple[str, str]]:
    assigned = {
        target.id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        for index, arg in enumerate(node.args):
            path = _path_text(arg, assigned)
            if path is None:
                continue
            before = node.args[index - 1] if index else None
            method = (
                before.value if isinstance(before, ast.Constant) and before.value in HTTP_METHODS else "POST"
            )
            found.add((str(method), path))
    return found


def calls_in_source(consumer: str) -> set[tuple[str, str]]:
    """(method, path) of every call to another service in the consumer's code; POST when implied."""
    found: set[tuple[str, str]] = set()
    for source in SOURCES[consumer]:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found |= _calls_in_function(node)
    return found


def _success_json(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status, response in sorted(operation.get("responses", {}).items()):
        schema = openapi_diff.body_schemas(response).get("application/json")
        if status.startswith("2") and schema:
            return schema
    return None


def _parameter_problems(call: Call, operation: dict[str, Any], provider: dict[str, Any]) -> list[str]:
    parameters = (openapi_diff.resolve(provider, p) for p in operation.get("parameters", ()))
    required = {p["name"] for p in parameters if p.get("required") and p.get("in") in ("query", "header")}
    return [
        f"{call}: the provider requires {name}, the consumer does not send it"
        for name in sorted(required - call.headers)
    ]


def _request_problems(call: Call, operation: dict[str, Any], provider: dict[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    accepted = openapi_diff.body_schemas(body).get("application/json")
    if call.request is None:
        needs_json = bool(body and body.get("required") and accepted is not None)
        return [f"{call}: the provider requires a JSON body, the consumer sends none"] if needs_json else []
    if accepted is None:
        return [f"{call}: the provider takes no JSON body"]
    sent = call.request.model_json_schema(mode="serialization")
    where = f"{call} request {call.request.__name__}"
    return openapi_diff.incompatibilities(sent, sent, accepted, provider, mode="request", where=where)


def _response_problems(call: Call, operation: dict[str, Any], provider: dict[str, Any]) -> list[str]:
    if call.response is None:
        return []
    answered = _success_json(operation)
    if answered is None:
        return [f"{call}: the provider documents no JSON answer for {call.response.__name__}"]
    parsed = call.response.model_json_schema(mode="validation")
    where = f"{call} response {call.response.__name__}"
    return openapi_diff.incompatibilities(parsed, parsed, answered, provider, mode="response", where=where)


def contract_problems(call: Call, provider: dict[str, Any]) -> list[str]:
    """How the provider's OpenAPI document fails the call; empty when the consumer is served."""
    operation = openapi_diff.operation(provider, call.method, call.path)
    if operation is None:
        return [f"{call}: no such operation in the provider's OpenAPI"]
    return (
        _parameter_problems(call, operation, provider)
        + _request_problems(call, operation, provider)
        + _response_problems(call, operation, provider)
    )
