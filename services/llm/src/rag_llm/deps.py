from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .ports import SamplingDefaults
from .routing import ModelRouter


def get_router(request: Request) -> ModelRouter:
    router: ModelRouter = request.state.router
    return router


def get_defaults(request: Request) -> SamplingDefaults:
    defaults: SamplingDefaults = request.state.defaults
    return defaults


RouterDep = Annotated[ModelRouter, Depends(get_router)]
DefaultsDep = Annotated[SamplingDefaults, Depends(get_defaults)]
