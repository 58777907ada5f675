"""The breaking-change checker on small hand-made OpenAPI documents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rag_devstack.openapi_diff import breaking_changes, incompatibilities

Document = dict[str, Any]


def document() -> Document:
    """`POST /v1/items` taking an `ItemIn` and answering an `Item`; `GET /v1/items/{id}`."""
    item = {
        "type": "object",
        "required": ["id", "name", "state"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "score": {"type": "number"},
            "state": {"$ref": "#/components/schemas/State"},
            "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}},
            "parent": {"anyOf": [{"$ref": "#/components/schemas/Item"}, {"type": "null"}]},
        },
    }
    item_in = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "limit": {"type": "number"},
            "kind": {"enum": ["a", "b"], "type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    schemas = {
        "Item": item,
        "ItemIn": item_in,
        "State": {"enum": ["open", "closed"], "type": "string"},
        "Tag": {"type": "object", "required": ["label"], "properties": {"label": {"type": "string"}}},
    }
    answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemIn"}}},
    }
    path_id = {"in": "path", "name": "id", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "paths": {
            "/v1/items": {"post": {"requestBody": body, "responses": {"201": answer}}},
            "/v1/items/{id}": {"get": {"parameters": [path_id], "responses": {"200": answer}}},
        },
        "components": {"schemas": schemas},
    }


def changed(edit: Any) -> list[str]:
    new = copy.deepcopy(document())
    edit(new)
    return breaking_changes(document(), new)


def schemas(doc: Document) -> dict[str, Any]:
    return doc["components"]["schemas"]


def test_the_same_document_has_no_breaking_change() -> None:
    assert breaking_changes(document(), document()) == []


def test_additions_are_compatible() -> None:
    def add(doc: Document) -> None:
        schemas(doc)["Item"]["properties"]["created"] = {"type": "string"}
        schemas(doc)["ItemIn"]["properties"]["colour"] = {"type": "string"}
        schemas(doc)["ItemIn"]["properties"]["kind"]["enum"].append("c")
        doc["paths"]["/v1/items"]["get"] = {"responses": {"200": {"description": "OK"}}}
        doc["paths"]["/v1/items/{id}"]["get"]["parameters"].append(
            {"in": "query", "name": "expand", "required": False, "schema": {"type": "boolean"}}
        )

    assert changed(add) == []


def test_a_request_type_widened_and_a_response_type_narrowed_are_compatible() -> None:
    def loosen(doc: Document) -> None:
        schemas(doc)["ItemIn"]["properties"]["name"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        schemas(doc)["Item"]["properties"]["score"] = {"type": "integer"}

    assert changed(loosen) == []


def test_a_renamed_path_parameter_is_compatible() -> None:
    def rename(doc: Document) -> None:
        operation = doc["paths"].pop("/v1/items/{id}")
        operation["get"]["parameters"][0]["name"] = "item_id"
        doc["paths"]["/v1/items/{item_id}"] = operation

    assert changed(rename) == []


def test_a_removed_path_or_method_breaks() -> None:
    assert changed(lambda doc: doc["paths"].pop("/v1/items/{id}")) == ["GET /v1/items/{id}: removed"]
    assert changed(lambda doc: doc["paths"]["/v1/items"].pop("post")) == ["POST /v1/items: removed"]


def test_a_removed_or_renamed_response_property_breaks() -> None:
    def remove(doc: Document) -> None:
        schemas(doc)["Item"]["properties"].pop("score")

    def rename(doc: Document) -> None:
        item = schemas(doc)["Item"]
        item["properties"]["title"] = item["properties"].pop("name")
        item["required"] = ["id", "title", "state"]

    assert "GET /v1/items/{id} response 200 application/json.score: removed" in changed(remove)
    assert "POST /v1/items response 201 application/json.name: removed" in changed(rename)


def test_a_changed_response_property_type_breaks() -> None:
    def widen(doc: Document) -> None:
        schemas(doc)["Item"]["properties"]["name"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}

    assert "GET /v1/items/{id} response 200 application/json.name: type changed: string -> null|string" in (
        changed(widen)
    )


def test_a_response_property_no_longer_required_breaks() -> None:
    assert "POST /v1/items response 201 application/json.id: no longer always sent" in changed(
        lambda doc: schemas(doc)["Item"]["required"].remove("id")
    )


def test_a_change_deep_behind_refs_is_found_with_its_path() -> None:
    def retype(doc: Document) -> None:
        schemas(doc)["Tag"]["properties"]["label"] = {"type": "integer"}

    assert "POST /v1/items response 201 application/json.tags[].label: type changed: string -> integer" in (
        changed(retype)
    )


def test_enum_values_removed_from_or_added_to_a_response_break() -> None:
    def remove(doc: Document) -> None:
        schemas(doc)["State"]["enum"] = ["open"]

    def add(doc: Document) -> None:
        schemas(doc)["State"]["enum"].append("archived")

    assert 'POST /v1/items response 201 application/json.state: enum values removed: "closed"' in changed(
        remove
    )
    assert 'POST /v1/items response 201 application/json.state: enum values added: "archived"' in changed(add)


def test_a_request_property_newly_required_breaks() -> None:
    def require(doc: Document) -> None:
        schemas(doc)["ItemIn"]["required"].append("limit")

    assert changed(require) == ["POST /v1/items request body.limit: newly required"]


@pytest.mark.parametrize(
    ("prop", "narrower", "message"),
    [
        ("limit", {"type": "integer"}, "type narrowed: number -> integer"),
        ("note", {"type": "string"}, "type narrowed: null|string -> string"),
        ("kind", {"enum": ["a"], "type": "string"}, 'enum values removed: "b"'),
        ("name", {"enum": ["x"], "type": "string"}, "enum values removed: (any value)"),
    ],
)
def test_a_request_property_narrowed_breaks(prop: str, narrower: dict[str, Any], message: str) -> None:
    def narrow(doc: Document) -> None:
        schemas(doc)["ItemIn"]["properties"][prop] = narrower

    assert f"POST /v1/items request body.{prop}: {message}" in changed(narrow)


def test_a_request_property_dropped_breaks() -> None:
    """Whether the server now refuses it (closed object) or silently ignores it."""

    def drop(doc: Document) -> None:
        schemas(doc)["ItemIn"]["properties"].pop("note")

    assert changed(drop) == ["POST /v1/items request body.note: removed"]


def test_a_new_required_parameter_or_body_breaks() -> None:
    def add_parameter(doc: Document) -> None:
        parameter = {"in": "header", "name": "X-Mode", "required": True, "schema": {"type": "string"}}
        doc["paths"]["/v1/items/{id}"]["get"]["parameters"].append(parameter)

    def add_body(doc: Document) -> None:
        doc["paths"]["/v1/items/{id}"]["get"]["requestBody"] = doc["paths"]["/v1/items"]["post"][
            "requestBody"
        ]

    assert changed(add_parameter) == ["GET /v1/items/{id} header parameter X-Mode: newly required"]
    assert changed(add_body) == ["GET /v1/items/{id} request body: newly required"]


def test_a_changed_success_status_breaks() -> None:
    def to_200(doc: Document) -> None:
        responses = doc["paths"]["/v1/items"]["post"]["responses"]
        responses["200"] = responses.pop("201")

    assert changed(to_200) == ["POST /v1/items response 201: removed"]


def test_a_recursive_schema_is_compared_without_looping() -> None:
    def retype(doc: Document) -> None:
        schemas(doc)["Item"]["properties"]["id"] = {"type": "integer"}

    assert changed(retype) == [
        "POST /v1/items response 201 application/json.id: type changed: string -> integer",
        "GET /v1/items/{id} response 200 application/json.id: type changed: string -> integer",
    ]


def test_a_consumer_reading_fewer_fields_than_sent_is_served() -> None:
    """Not strict: a provider may send more, or fewer optional fields, than a consumer reads."""
    sent = {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
    }
    parsed = {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "number"}, "c": {"type": "string"}},
    }
    assert incompatibilities(parsed, parsed, sent, sent, mode="response") == []
    assert incompatibilities(sent, sent, parsed, parsed, mode="response") == [
        ".a: type changed: integer -> number"
    ]
