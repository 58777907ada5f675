"""`/v1/admin/keys`: create (secret shown once), list, get, rotate and revoke API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response

from . import apikeys as apikeys_service
from .apikeys import IssuedKey, KeyList, KeySpec, KeyView
from .deps import AdminDep, KeyStoreDep
from .errors import Forbidden

router = APIRouter(prefix="/v1/admin/keys", tags=["admin"])


@router.post("", status_code=201, response_model=IssuedKey)
async def create_key(spec: KeySpec, admin: AdminDep, store: KeyStoreDep) -> IssuedKey:
    if admin.tenant is not None and spec.tenant != admin.tenant:
        raise Forbidden("A tenant's admin key may create keys only for its own tenant.")
    return await apikeys_service.create(spec, store=store)


@router.get("", response_model=KeyList)
async def list_keys(admin: AdminDep, store: KeyStoreDep, tenant: str | None = None) -> KeyList:
    return await apikeys_service.list_keys(store=store, tenant=admin.tenant or tenant)


@router.get("/{key_id}", response_model=KeyView)
async def get_key(key_id: str, admin: AdminDep, store: KeyStoreDep) -> KeyView:
    return await apikeys_service.get(key_id, store=store, tenant=admin.tenant)


@router.post("/{key_id}/rotate", response_model=IssuedKey)
async def rotate_key(key_id: str, admin: AdminDep, store: KeyStoreDep) -> IssuedKey:
    return await apikeys_service.rotate(key_id, store=store, tenant=admin.tenant)


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: str, admin: AdminDep, store: KeyStoreDep) -> Response:
    await apikeys_service.revoke(key_id, store=store, tenant=admin.tenant)
    return Response(status_code=204)
