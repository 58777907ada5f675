from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .ports import Embedder


def get_embedder(request: Request) -> Embedder:
    embedder: Embedder = request.state.embedder
    return embedder


EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
