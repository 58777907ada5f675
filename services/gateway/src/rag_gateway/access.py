"""Who is calling and what they may do: API keys, expiry, scopes and the admin key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from pydantic import SecretStr

from rag_common.errors import Unauthorized

from . import apikeys as apikeys_service
from . import jwt_auth as jwt_service
from .adapters.redis_store import hash_key
from .errors import Forbidden, KeyExpired
from .ports import ApiKeyRecord, Guard, KeyStore, RateDecision, Scope

MISSING_KEY = "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


@dataclass(frozen=True, slots=True)
class Caller:
    """`guard` (API keys read from the cache) is confirmed by the rate-limit script; `credential` is
    kept only to read the record again when that check finds it changed."""

    key: ApiKeyRecord
    subject: str
    rate: RateDecision | None = None
    guard: Guard | None = None
    credential: str = field(default="", repr=False)

    @property
    def tenant(self) -> str:
        return self.key.tenant


@dataclass(frozen=True, slots=True)
class Admin:
    """An admin caller; `tenant` None means the platform admin key (every tenant)."""

    tenant: str | None


async def authenticate(
    api_key: str | None, *, keys: KeyStore, jwt: jwt_service.JwtVerifier | None = None
) -> Caller:
    """The stored record for a key, or a verified JWT's claims when JWT auth is on and the credential
    is shaped like one; 401 when it is missing, unknown, expired or fails verification."""
    if not api_key:
        raise Unauthorized(MISSING_KEY)
    if jwt is not None and jwt_service.looks_like_jwt(api_key):
        token = await jwt_service.verify(api_key, verifier=jwt)
        return Caller(key=token.record, subject=token.subject)
    return await _cached_caller(api_key, keys)


async def reauthenticate(caller: Caller, scope: Scope, *, keys: KeyStore) -> Caller:
    """The caller's key read again from Redis, after the rate-limit script found its cached copy
    changed (revoked: 401; rotated: 401; rewritten: the new record, its scope checked again)."""
    keys.forget(caller.credential)
    fresh = await _cached_caller(caller.credential, keys)
    require_scope(fresh, scope)
    return fresh


async def _cached_caller(api_key: str, keys: KeyStore) -> Caller:
    cached = await keys.lookup_cached(api_key)
    if cached is None:
        raise Unauthorized("The API key is not valid.")
    return _admissible(cached.record, api_key, cached.guard)


def _admissible(record: ApiKeyRecord | None, api_key: str, guard: Guard | None) -> Caller:
    if record is None:
        raise Unauthorized("The API key is not valid.")
    if apikeys_service.is_expired(record):
        assert record.expires_at is not None
        raise KeyExpired(
            f"The API key expired at {record.expires_at.isoformat()}; ask an administrator for a new one."
        )
    return Caller(key=record, subject=record.key_id or hash_key(api_key), guard=guard, credential=api_key)


def require_scope(caller: Caller, scope: Scope) -> None:
    if scope not in caller.key.scopes:
        credential = "token" if caller.subject.startswith(jwt_service.SUBJECT_PREFIX) else "API key"
        raise Forbidden(
            f"The {credential} lacks the '{scope}' scope this endpoint needs.",
            extra={"required_scope": scope},
        )


async def authenticate_admin(api_key: str | None, *, admin_key: SecretStr | None, keys: KeyStore) -> Admin:
    """The settings' admin key (compared in constant time), or a stored key with the `admin` scope.

    A stored admin key manages only its own tenant's keys.
    """
    if not api_key:
        raise Unauthorized(MISSING_KEY)
    expected = admin_key.get_secret_value() if admin_key else ""
    if expected and hmac.compare_digest(api_key.encode(), expected.encode()):
        return Admin(tenant=None)
    # Admin calls read Redis every time: no rate-limit step follows to confirm a cached record.
    caller = _admissible(await keys.lookup(api_key), api_key, guard=None)
    require_scope(caller, "admin")
    return Admin(tenant=caller.tenant)
