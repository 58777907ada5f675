"""Payload filters for `qdrant-edge-py`, with the same meaning as `adapters.qdrant.payload_filter`.

Two gaps of the 0.9 binding are covered here:
- `MatchValue(True)` is read as the integer 1 (a Python `bool` is an `int`, and the binding tries
  integers first), so it never matches a stored boolean; `numpy.bool_` is not an `int` and reaches
  the engine as a boolean.
- `MatchAny` takes strings or integers, not a mix and not booleans or floats; an any-of list is
  split by type into alternatives under one `should`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from qdrant_edge import (
    FieldCondition,
    Filter,
    MatchAny,
    MatchValue,
    PayloadSchemaType,
    RangeFloat,
)

from rag_common.contracts import FilterValue

if TYPE_CHECKING:
    from qdrant_edge import ConditionType


def _single(key: str, value: FilterValue) -> FieldCondition:
    if isinstance(value, bool):
        return FieldCondition(key=key, match=MatchValue(np.bool_(value)))  # type: ignore[arg-type]
    if isinstance(value, float):
        return FieldCondition(key=key, range=RangeFloat(gte=value, lte=value))
    return FieldCondition(key=key, match=MatchValue(value))


def _any_of(key: str, values: list[FilterValue]) -> ConditionType:
    strings = [v for v in values if isinstance(v, str)]
    integers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    alternatives: list[ConditionType] = []
    if strings:
        alternatives.append(FieldCondition(key=key, match=MatchAny(strings)))
    if integers:
        alternatives.append(FieldCondition(key=key, match=MatchAny(integers)))
    alternatives += [_single(key, v) for v in values if isinstance(v, bool | float)]
    return alternatives[0] if len(alternatives) == 1 else Filter(should=alternatives)


def _condition(key: str, value: FilterValue | list[FilterValue]) -> ConditionType:
    return _any_of(key, value) if isinstance(value, list) else _single(key, value)


def payload_filter(
    conditions: Mapping[str, FilterValue | list[FilterValue]] | None,
    exclude: Mapping[str, FilterValue | list[FilterValue]] | None = None,
) -> Filter | None:
    """Every `conditions` field must match (a list: any of its values); no `exclude` field may."""
    if not conditions and not exclude:
        return None
    return Filter(
        must=[_condition(k, v) for k, v in (conditions or {}).items()] or None,
        must_not=[_condition(k, v) for k, v in (exclude or {}).items()] or None,
    )


def index_schemas(
    *fields: Mapping[str, FilterValue | list[FilterValue]] | None,
) -> dict[str, PayloadSchemaType]:
    """The payload index type each filtered field calls for, from the type of its (first) value."""
    schemas: dict[str, PayloadSchemaType] = {}
    for conditions in fields:
        for key, value in (conditions or {}).items():
            sample = value[0] if isinstance(value, list) else value
            if isinstance(sample, bool):
                schemas[key] = PayloadSchemaType.Bool
            elif isinstance(sample, int):
                schemas[key] = PayloadSchemaType.Integer
            elif isinstance(sample, float):
                schemas[key] = PayloadSchemaType.Float
            else:
                schemas[key] = PayloadSchemaType.Keyword
    return schemas
