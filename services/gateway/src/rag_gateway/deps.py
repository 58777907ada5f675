from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag_common.http import ServiceClient

from . import access as access_service
from . import limits as limits_service
from .access import Admin, Caller
from .ports import KeyStore, RateLimiter, Scope
from .settings import Settings

bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_orchestrator(request: Request) -> ServiceClient:
    client: ServiceClient = request.state.orchestrator
    return client


def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.state.keys
    return keys


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.state.limiter
    return limiter


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def get_api_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> str | None:
    return credentials.credentials if credentials else header_key


OrchestratorDep = Annotated[ServiceClient, Depends(get_orchestrator)]
KeyStoreDep = Annotated[KeyStore, Depends(get_keys)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiKeyDep = Annotated[str | None, Depends(get_api_key)]


def caller_with(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """Authenticate, check the scope, then count the request (before the body is validated)."""

    async def get_caller(
        api_key: ApiKeyDep, keys: KeyStoreDep, limiter: LimiterDep, settings: SettingsDep
    ) -> Caller:
        caller = await access_service.authenticate(api_key, keys=keys)
        access_service.require_scope(caller, scope)
        return await limits_service.admit_request(caller, limiter=limiter, settings=settings)

    return get_caller


async def get_admin(api_key: ApiKeyDep, keys: KeyStoreDep, settings: SettingsDep) -> Admin:
    return await access_service.authenticate_admin(api_key, admin_key=settings.admin_api_key, keys=keys)


QueryCallerDep = Annotated[Caller, Depends(caller_with("query"))]
IngestCallerDep = Annotated[Caller, Depends(caller_with("ingest"))]
AdminDep = Annotated[Admin, Depends(get_admin)]
