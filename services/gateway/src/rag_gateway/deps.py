from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag_common.http import ServiceClient

from . import access as access_service
from .access import Caller

bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_orchestrator(request: Request) -> ServiceClient:
    client: ServiceClient = request.state.orchestrator
    return client


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> Caller:
    api_key = credentials.credentials if credentials else header_key
    return await access_service.admit(api_key, keys=request.state.keys, limiter=request.state.limiter)


OrchestratorDep = Annotated[ServiceClient, Depends(get_orchestrator)]
CallerDep = Annotated[Caller, Depends(get_caller)]
