"""Managing API keys: create (the secret is shown once), list, rotate, revoke.

Used by the admin API and by the `python -m rag_gateway.keys` CLI, over the same `KeyStore`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator

from rag_common.errors import NotFound

from .ports import ApiKeyRecord, KeyStore, Scope

# The orchestrator maps (tenant, collection) to `t-<tenant>--<collection>`; a tenant without hyphens
# keeps that mapping unambiguous, and 32 characters leave room for collection names.
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_]{0,31}$"
TenantName = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]
# Checked against the safety service's policies only when the key is used (422 there if unknown).
SafetyPolicyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
SECRET_PREFIX = "rag_"


class KeySpec(BaseModel):
    tenant: TenantName
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1)] = Field(default_factory=lambda: ["query"])
    expires_at: datetime | None = Field(default=None, description="ISO 8601; without a zone, UTC.")
    requests_per_minute: int | None = Field(default=None, ge=1, description="Own limit; default: settings.")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="Own limit; default: settings.")
    safety_policy: SafetyPolicyName | None = Field(
        default=None,
        description="A policy of the safety service's SAFETY_POLICIES for this key's requests; default: the "
        "tenant's. Not checked here: a name the safety service lacks makes the key's queries 422.",
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class KeyView(BaseModel):
    """A key as listed: everything but the secret, which is never stored."""

    id: str
    tenant: str
    name: str
    scopes: list[Scope]
    expires_at: datetime | None
    expired: bool
    requests_per_minute: int | None
    tokens_per_minute: int | None
    created_at: datetime | None
    safety_policy: str | None = None


class IssuedKey(KeyView):
    key: str = Field(description="The secret; shown only in this answer.")


class KeyList(BaseModel):
    keys: list[KeyView]


def is_expired(record: ApiKeyRecord, now: datetime | None = None) -> bool:
    return record.expires_at is not None and record.expires_at <= (now or datetime.now(UTC))


def view(record: ApiKeyRecord) -> KeyView:
    return KeyView(
        id=record.key_id,
        tenant=record.tenant,
        name=record.name,
        scopes=list(record.scopes),
        expires_at=record.expires_at,
        expired=is_expired(record),
        requests_per_minute=record.requests_per_minute,
        tokens_per_minute=record.tokens_per_minute,
        created_at=record.created_at,
        safety_policy=record.safety_policy,
    )


def issued(record: ApiKeyRecord, secret: str) -> IssuedKey:
    return IssuedKey(key=secret, **view(record).model_dump())


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def create(spec: KeySpec, *, store: KeyStore) -> IssuedKey:
    record = ApiKeyRecord(
        tenant=spec.tenant,
        name=spec.name,
        key_id="key_" + secrets.token_hex(8),
        scopes=tuple(dict.fromkeys(spec.scopes)),
        expires_at=spec.expires_at,
        requests_per_minute=spec.requests_per_minute,
        tokens_per_minute=spec.tokens_per_minute,
        created_at=datetime.now(UTC).replace(microsecond=0),
        safety_policy=spec.safety_policy,
    )
    secret = new_secret()
    await store.register(secret, record)
    return issued(record, secret)


async def list_keys(*, store: KeyStore, tenant: str | None = None) -> KeyList:
    return KeyList(keys=[view(r) for r in await store.list(tenant)])


async def _owned(key_id: str, store: KeyStore, tenant: str | None) -> ApiKeyRecord:
    """Another tenant's key is answered like a missing one: 404, never 403."""
    record = await store.get(key_id)
    if record is None or (tenant is not None and record.tenant != tenant):
        raise NotFound(f"No API key with id '{key_id}'.", extra={"key_id": key_id})
    return record


async def get(key_id: str, *, store: KeyStore, tenant: str | None = None) -> KeyView:
    return view(await _owned(key_id, store, tenant))


async def rotate(key_id: str, *, store: KeyStore, tenant: str | None = None) -> IssuedKey:
    """A new secret for the same key id and settings; the old secret stops working at once."""
    await _owned(key_id, store, tenant)
    secret = new_secret()
    record = await store.replace_secret(key_id, secret)
    if record is None:
        raise NotFound(f"No API key with id '{key_id}'.", extra={"key_id": key_id})
    return issued(record, secret)


async def revoke(key_id: str, *, store: KeyStore, tenant: str | None = None) -> None:
    await _owned(key_id, store, tenant)
    if not await store.revoke(key_id):
        raise NotFound(f"No API key with id '{key_id}'.", extra={"key_id": key_id})
