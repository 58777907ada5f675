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


class ModelMismatch(Conflict):
    type_slug = "embedding-model-mismatch"

    def __init__(self, name: str, recorded: str, requested: str) -> None:
        super().__init__(
            f"Collection '{name}' holds vectors of model '{recorded}'; this request's vectors are from "
            f"model '{requested}'. Re-embed the collection to use the new model.",
            extra={"collection": name, "collection_model": recorded, "request_model": requested},
        )


class CollectionLocked(Conflict):
    type_slug = "collection-locked"

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(
            f"Collection '{name}' is read-only while a migration runs ({owner}); writes resume when it ends.",
            extra={"collection": name, "lock": owner},
        )


class ReplaceRefused(Conflict):
    def __init__(self, name: str, source: str) -> None:
        super().__init__(
            f"Collection '{name}' cannot be replaced by '{source}': the source must be another collection.",
            extra={"collection": name},
        )
