from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .ports import Detectors
from .service import Policy


def get_detectors(request: Request) -> Detectors:
    detectors: Detectors = request.state.detectors
    return detectors


def get_policy(request: Request) -> Policy:
    policy: Policy = request.state.policy
    return policy


DetectorsDep = Annotated[Detectors, Depends(get_detectors)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
