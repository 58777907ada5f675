from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .batching import DynamicBatcher
from .ports import Embedder
from .settings import Settings


def get_embedder(request: Request) -> Embedder:
    embedder: Embedder = request.state.embedder
    return embedder


def get_batcher(request: Request) -> DynamicBatcher:
    batcher: DynamicBatcher = request.state.batcher
    return batcher


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
BatcherDep = Annotated[DynamicBatcher, Depends(get_batcher)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
