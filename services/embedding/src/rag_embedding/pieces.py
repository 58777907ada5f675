"""One request's work split between the model calls that run at once."""

from __future__ import annotations

import math
from typing import TypeVar

T = TypeVar("T")


def split_evenly(items: list[T], parts: int) -> list[list[T]]:
    """At most `parts` consecutive, non-empty slices of near-equal size, in order."""
    size = math.ceil(len(items) / max(1, min(parts, len(items)))) if items else 1
    return [items[start : start + size] for start in range(0, len(items), size)]
