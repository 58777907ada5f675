"""Breaking changes between two OpenAPI documents, and whether one JSON schema still fits another.

Hand-written: no maintained Python OpenAPI diff is on PyPI (oasdiff and openapi-diff are Go and Java).
Structural, not a full JSON-schema subset check. Both questions reduce to one comparison of an
`expected` schema (what an existing client relies on) with an `actual` one:

- "request": `expected` is what clients send, `actual` what the server accepts. Breaking: a property
  newly required, a type narrowed, an enum value removed, a sent property no longer known.
- "response": `expected` is what clients parse, `actual` what the server sends. Breaking: a required
  property no longer always sent, a type widened or changed, a new enum value. `strict` (used between
  two versions of one document) also flags any property or enum value that went away.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Schema = dict[str, Any]
Mode = Literal["request", "response"]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAMETER = re.compile(r"\{[^}]*\}")


@dataclass
class _Walk:
    """One comparison: the documents `$ref`s resolve in, and the problems found so far."""

    expected_root: Schema
    actual_root: Schema
    mode: Mode
    strict: bool
    problems: list[str] = field(default_factory=list)
    ancestors: set[tuple[int, int]] = field(default_factory=set)


def resolve(root: Schema, schema: Any) -> Schema:
    """Follows `$ref`s (`#/components/schemas/X`, `#/$defs/X`) and single-item `allOf`s."""
    for _ in range(32):
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            target: Any = root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = target
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema
    raise ValueError("$ref cycle")


def _variants(root: Schema, schema: Any) -> list[Schema]:
    schema = resolve(root, schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    return [variant for alternative in alternatives for variant in _variants(root, alternative)]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names[type(value)]


def types(root: Schema, schema: Any) -> set[str] | None:
    """The JSON types a schema allows; None when it allows anything."""
    found: set[str] = set()
    for variant in _variants(root, schema):
        if "type" in variant:
            kind = variant["type"]
            found.update([kind] if isinstance(kind, str) else kind)
        elif "const" in variant or "enum" in variant:
            found.update(_json_type(value) for value in variant.get("enum", [variant.get("const")]))
        elif "properties" in variant:
            found.add("object")
        elif "items" in variant:
            found.add("array")
        else:
            return None
    return found


def enum_values(root: Schema, schema: Any) -> set[str] | None:
    """The values (as JSON) a schema is limited to, null included; None when not an enum."""
    values: set[str] = set()
    for variant in _variants(root, schema):
        if "const" in variant or "enum" in variant:
            values.update(json.dumps(v) for v in variant.get("enum", [variant.get("const")]))
        elif variant.get("type") == "null":
            values.add("null")
        else:
            return None
    return values


def _only(root: Schema, schema: Any, kind: str) -> Schema | None:
    matching = [
        v
        for v in _variants(root, schema)
        if v.get("type") == kind or (kind == "object" and "properties" in v)
    ]
    return matching[0] if len(matching) == 1 else None


def _fmt(kinds: set[str] | None) -> str:
    return "any" if kinds is None else "|".join(sorted(kinds))


def _covered(kind: str, allowed: set[str]) -> bool:
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _compare_types(walk: _Walk, where: str, expected: Schema, actual: Schema) -> None:
    old, new = types(walk.expected_root, expected), types(walk.actual_root, actual)
    written, read = (old, new) if walk.mode == "request" else (new, old)
    if read is None:
        return
    if written is None or not all(_covered(kind, read) for kind in written):
        change = "narrowed" if walk.mode == "request" else "changed"
        walk.problems.append(f"{where}: type {change}: {_fmt(old)} -> {_fmt(new)}")


def _compare_enums(walk: _Walk, where: str, expected: Schema, actual: Schema) -> None:
    old, new = enum_values(walk.expected_root, expected), enum_values(walk.actual_root, actual)
    if walk.mode == "request" and new is not None:
        gone = (old - new) if old is not None else {"(any value)"}
        if gone:
            walk.problems.append(f"{where}: enum values removed: {', '.join(sorted(gone))}")
    if walk.mode == "response" and old is not None:
        added = (new - old) if new is not None else {"(any value)"}
        if added:
            walk.problems.append(f"{where}: enum values added: {', '.join(sorted(added))}")
        if walk.strict and new is not None and old - new:
            walk.problems.append(f"{where}: enum values removed: {', '.join(sorted(old - new))}")


def _always_present(obj: Schema, mode: Mode) -> set[str]:
    """Properties a writer always includes; a response field with a default is always serialised."""
    required = set(obj.get("required", ()))
    if mode == "response":
        required |= {name for name, prop in obj.get("properties", {}).items() if "default" in prop}
    return required


def _compare_objects(walk: _Walk, where: str, old: Schema, new: Schema, depth: int) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    writer, reader = (old, new) if walk.mode == "request" else (new, old)
    for name in sorted(set(reader.get("required", ())) - _always_present(writer, walk.mode)):
        if walk.mode == "request":
            walk.problems.append(f"{where}.{name}: newly required")
        else:
            state = "no longer always sent" if name in new_props else "removed"
            walk.problems.append(f"{where}.{name}: {state}")
    for name in sorted(set(old_props) - set(new_props) - set(reader.get("required", ()))):
        closed = walk.mode == "request" and new.get("additionalProperties") is False
        if closed or walk.strict:
            walk.problems.append(f"{where}.{name}: removed")
    for name in sorted(set(old_props) & set(new_props)):
        _compare(walk, f"{where}.{name}", old_props[name], new_props[name], depth + 1)
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        _compare(walk, f"{where}.*", old_extra, new_extra, depth + 1)


def _compare(walk: _Walk, where: str, expected: Any, actual: Any, depth: int = 0) -> None:
    expected, actual = resolve(walk.expected_root, expected), resolve(walk.actual_root, actual)
    _compare_types(walk, where, expected, actual)
    _compare_enums(walk, where, expected, actual)
    old_object, new_object = (
        _only(walk.expected_root, expected, "object"),
        _only(walk.actual_root, actual, "object"),
    )
    key = (id(old_object or expected), id(new_object or actual))
    if depth > 24 or key in walk.ancestors:  # a recursive schema: the outer pass covers it
        return
    walk.ancestors.add(key)
    if old_object is not None and new_object is not None:
        _compare_objects(walk, where, old_object, new_object, depth)
    old_items, new_items = (
        _only(walk.expected_root, expected, "array"),
        _only(walk.actual_root, actual, "array"),
    )
    if old_items is not None and new_items is not None:
        _compare(walk, f"{where}[]", old_items.get("items", {}), new_items.get("items", {}), depth + 1)
    walk.ancestors.discard(key)


def incompatibilities(
    expected: Schema,
    expected_root: Schema,
    actual: Schema,
    actual_root: Schema,
    *,
    mode: Mode,
    strict: bool = False,
    where: str = "",
) -> list[str]:
    """What in `actual` breaks a client built against `expected` (see the module docstring)."""
    walk = _Walk(expected_root, actual_root, mode, strict)
    _compare(walk, where, expected, actual)
    return walk.problems


def operation(document: Schema, method: str, path: str) -> Schema | None:
    """The operation at `method path`; path parameters match whatever their names."""
    wanted = _PARAMETER.sub("{}", path)
    for candidate, item in document.get("paths", {}).items():
        if _PARAMETER.sub("{}", candidate) == wanted:
            found: Schema | None = item.get(method.lower())
            return found
    return None


def body_schemas(part: Schema | None) -> dict[str, Schema]:
    """The schema of each media type of a request body or response."""
    return {media: content.get("schema", {}) for media, content in (part or {}).get("content", {}).items()}


def _parameter_changes(label: str, old_op: Schema, new_op: Schema, old: Schema, new: Schema) -> list[str]:
    def by_key(op: Schema, root: Schema) -> dict[tuple[str, str], Schema]:
        params = (resolve(root, p) for p in op.get("parameters", ()))
        return {(p["in"], p["name"]): p for p in params if p.get("in") != "path"}

    before, after = by_key(old_op, old), by_key(new_op, new)
    problems = []
    for key, param in sorted(after.items()):
        where = f"{label} {key[0]} parameter {key[1]}"
        if param.get("required") and not before.get(key, {}).get("required"):
            problems.append(f"{where}: newly required")
        if key in before:
            problems += incompatibilities(
                before[key].get("schema", {}),
                old,
                param.get("schema", {}),
                new,
                mode="request",
                strict=True,
                where=where,
            )
    return problems


def _body_changes(label: str, old_op: Schema, new_op: Schema, old: Schema, new: Schema) -> list[str]:
    old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
    if new_body and new_body.get("required") and not (old_body and old_body.get("required")):
        return [f"{label} request body: newly required"]
    old_media, new_media = body_schemas(old_body), body_schemas(new_body)
    problems = [
        f"{label} request body {media}: no longer accepted"
        for media in sorted(set(old_media) - set(new_media))
    ]
    for media in sorted(set(old_media) & set(new_media)):
        where = f"{label} request body"
        problems += incompatibilities(
            old_media[media], old, new_media[media], new, mode="request", strict=True, where=where
        )
    return problems


def _response_changes(label: str, old_op: Schema, new_op: Schema, old: Schema, new: Schema) -> list[str]:
    old_responses, new_responses = old_op.get("responses", {}), new_op.get("responses", {})
    problems = []
    for status in sorted(old_responses):
        if status not in new_responses:
            if status.startswith("2"):
                problems.append(f"{label} response {status}: removed")
            continue
        old_media = body_schemas(resolve(old, old_responses[status]))
        new_media = body_schemas(resolve(new, new_responses[status]))
        for media in sorted(old_media):
            where = f"{label} response {status} {media}"
            if media not in new_media:
                problems.append(f"{where}: removed")
                continue
            problems += incompatibilities(
                old_media[media], old, new_media[media], new, mode="response", strict=True, where=where
            )
    return problems


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Everything in `new` that breaks a client written against `old`; empty when compatible."""
    problems = []
    for path, item in sorted(old.get("paths", {}).items()):
        for method in (m for m in HTTP_METHODS if m in item):
            label = f"{method.upper()} {path}"
            new_op = operation(new, method, path)
            if new_op is None:
                problems.append(f"{label}: removed")
                continue
            old_op = item[method]
            problems += _parameter_changes(label, old_op, new_op, old, new)
            problems += _body_changes(label, old_op, new_op, old, new)
            problems += _response_changes(label, old_op, new_op, old, new)
    return problems
