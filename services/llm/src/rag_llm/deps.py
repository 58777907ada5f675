from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .backends import BackendFactory
from .ports import SamplingDefaults
from .routing import ModelRouter
from .settings import Settings


def get_router(request: Request) -> ModelRouter:
    router: ModelRouter = request.state.router
    return router


def get_defaults(request: Request) -> SamplingDefaults:
    defaults: SamplingDefaults = request.state.defaults
    return defaults


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def get_factory(request: Request) -> BackendFactory:
    factory: BackendFactory = request.state.factory
    return factory


RouterDep = Annotated[ModelRouter, Depends(get_router)]
DefaultsDep = Annotated[SamplingDefaults, Depends(get_defaults)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
FactoryDep = Annotated[BackendFactory, Depends(get_factory)]
