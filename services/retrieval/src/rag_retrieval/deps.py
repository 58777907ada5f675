from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .ports import VectorStore


def get_store(request: Request) -> VectorStore:
    store: VectorStore = request.state.store
    return store


StoreDep = Annotated[VectorStore, Depends(get_store)]
