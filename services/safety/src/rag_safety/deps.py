from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .policy import PolicyBook
from .ports import Detectors
from .settings import Settings


def get_detectors(request: Request) -> Detectors:
    detectors: Detectors = request.state.detectors
    return detectors


def get_policies(request: Request) -> PolicyBook:
    policies: PolicyBook = request.state.policies
    return policies


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


DetectorsDep = Annotated[Detectors, Depends(get_detectors)]
PoliciesDep = Annotated[PolicyBook, Depends(get_policies)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
