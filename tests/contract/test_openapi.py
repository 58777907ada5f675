"""The committed OpenAPI documents (openapi/*.json): current, /v1-compatible, and honoured for every consumer.

The documents are generated from each service's `create_app()` without its lifespan, as `make openapi`
does. A consumer's calls are checked against the provider's committed document, so a change that
breaks the orchestrator or the gateway fails here before any process starts.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from rag_devstack import openapi, openapi_diff
from rag_devstack.topology import SERVICES

from .consumers import CALLS, SOURCES, Call, calls_in_source, contract_problems

OPENAPI_DIR = Path(__file__).resolve().parents[2] / "openapi"
NAMES = [spec.name for spec in SERVICES]
UNVERSIONED = {"/healthz", "/readyz", "/metrics"}


@cache
def generated(name: str) -> dict[str, Any]:
    return openapi.generate(name)


def committed(name: str) -> dict[str, Any]:
    document = openapi.committed(name, OPENAPI_DIR)
    assert document is not None, f"openapi/{name}.json is missing: run `make openapi` and commit it"
    return document


@pytest.mark.parametrize("name", NAMES)
def test_committed_openapi_is_current_and_compatible(name: str) -> None:
    old, new = committed(name), generated(name)
    if (OPENAPI_DIR / f"{name}.json").read_text() == openapi.render(new):
        return
    breaking = openapi_diff.breaking_changes(old, new)
    assert not breaking, (
        f"The API of {name} changed incompatibly with openapi/{name}.json; keep /v1 compatible or add a "
        "/v2 beside it (docs/api-versioning.md):\n  " + "\n  ".join(breaking)
    )
    pytest.fail(
        f"openapi/{name}.json is out of date; the change is compatible: run `make openapi` and commit it"
    )


def test_make_openapi_writes_sorted_json_and_names_breaking_changes(tmp_path: Path) -> None:
    assert openapi.write("embedding", tmp_path) == "new"
    written = (tmp_path / "embedding.json").read_text()
    assert written == json.dumps(json.loads(written), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert openapi.write("embedding", tmp_path) == "unchanged"

    document = json.loads(written)
    document["paths"]["/v1/legacy"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    (tmp_path / "embedding.json").write_text(openapi.render(document))
    assert openapi.write("embedding", tmp_path) == "changed, BREAKING:\n    GET /v1/legacy: removed"

    del document["paths"]["/v1/legacy"], document["paths"]["/v1/models"]
    (tmp_path / "embedding.json").write_text(openapi.render(document))
    assert openapi.write("embedding", tmp_path) == "changed, compatible"


def test_every_public_gateway_route_is_under_v1() -> None:
    app = openapi.service_app("gateway")
    documented = [path for path in app.openapi()["paths"] if path not in UNVERSIONED]
    assert len(documented) >= 8
    assert [path for path in documented if not path.startswith("/v1/")] == []
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    served = [route.path for route in iter_route_contexts(app.routes)]
    assert [p for p in served if not p.startswith("/v1/") and p not in UNVERSIONED | docs] == []


@pytest.mark.parametrize("consumer", sorted(SOURCES))
def test_every_call_in_the_consumer_code_is_registered(consumer: str) -> None:
    registered = {call.key for call in CALLS if call.consumer == consumer}
    assert calls_in_source(consumer) == registered


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_provider_openapi_serves_the_consumer_call(call: Call) -> None:
    assert contract_problems(call, committed(call.provider)) == []


def _gateway_call(path: str) -> Call:
    return next(call for call in CALLS if call.consumer == "gateway" and call.path == path)


def test_a_provider_change_that_breaks_the_gateway_is_caught() -> None:
    provider = copy.deepcopy(committed("orchestrator"))
    schemas = provider["components"]["schemas"]
    schemas["RagAnswer"]["properties"].pop("answer")
    schemas["RagAnswer"]["required"].remove("answer")
    schemas["RagQuery"]["required"].append("top_k")
    operation = provider["paths"]["/v1/rag/query"]["post"]
    operation.setdefault("parameters", []).append(
        {"in": "query", "name": "mode", "required": True, "schema": {"type": "string"}}
    )
    problems = contract_problems(_gateway_call("/v1/rag/query"), provider)
    assert any(p.endswith("RagQuery.top_k: newly required") for p in problems), problems
    assert any(p.endswith("RagAnswer.answer: removed") for p in problems), problems
    assert any("requires mode" in p for p in problems), problems

    del provider["paths"]["/v1/models"]
    assert contract_problems(_gateway_call("/v1/models"), provider) != []


def test_a_provider_change_that_breaks_the_orchestrator_is_caught() -> None:
    provider = copy.deepcopy(committed("retrieval"))
    hit = provider["components"]["schemas"]["SearchHit"]["properties"]
    hit["score"] = {"type": "string"}
    call = next(call for call in CALLS if call.path.endswith("/search"))
    problems = contract_problems(call, provider)
    assert problems == [f"{call} response SearchResponse.hits[].score: type changed: number -> string"]
