from __future__ import annotations

from rag_common.errors import Conflict, NotFound, UnprocessableContent


class CollectionNotFound(NotFound):
    type_slug = "collection-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"Collection '{name}' does not exist.", extra={"collection": name})


class CollectionMismatch(Conflict):
    def __init__(self, name: str, existing: int, requested: int) -> None:
        super().__init__(
            f"Collection '{name}' exists with vector size {existing}, not {requested}.",
            extra={"collection": name},
        )


class VectorSizeMismatch(UnprocessableContent):
    def __init__(self, name: str, expected: int, got: int) -> None:
        super().__init__(
            f"Collection '{name}' holds vectors of size {expected}; got a vector of size {got}.",
            extra={"collection": name},
        )


class SparseIndexMissing(UnprocessableContent):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Collection '{name}' was created without a BM25 index; search it with mode 'dense'.",
            extra={"collection": name},
        )
