from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .ports import ChatBackend, SamplingDefaults


def get_backend(request: Request) -> ChatBackend:
    backend: ChatBackend = request.state.backend
    return backend


def get_defaults(request: Request) -> SamplingDefaults:
    defaults: SamplingDefaults = request.state.defaults
    return defaults


BackendDep = Annotated[ChatBackend, Depends(get_backend)]
DefaultsDep = Annotated[SamplingDefaults, Depends(get_defaults)]
