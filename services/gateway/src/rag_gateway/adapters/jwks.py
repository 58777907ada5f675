"""Verification keys for bearer JWTs: an identity provider's JWKS (cached, refetched on rotation) or a
static key from settings."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt.algorithms import AllowedPublicKeys

from rag_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)
VerificationKey = AllowedPublicKeys | bytes
PUBLIC_KTYS = ("RSA", "EC", "OKP")


@dataclass(frozen=True, slots=True)
class _Jwk:
    key: AllowedPublicKeys
    alg: str | None  # a JWK naming its `alg` may be used with that algorithm only (RFC 7517 4.4)


class JwksKeys:
    """Keys from a JWKS URL, trusted for `cache_s`.

    A `kid` not in the cached set refetches the set (the provider rotated its keys), but at most once
    per `min_refresh_s`, so tokens with made-up `kid`s cannot turn the gateway against the provider.
    Fetching is async (httpx), never blocking the event loop. A failed fetch keeps the keys it had.
    """

    def __init__(self, url: str, *, cache_s: float, min_refresh_s: float, timeout_s: float) -> None:
        self._url = url
        self._cache_s = cache_s
        self._min_refresh_s = min_refresh_s
        self._timeout = httpx.Timeout(timeout_s)
        self._keys: dict[str, _Jwk] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for `kid` usable with `alg`; None when the provider has no such key."""
        if self._may_refetch() and time.monotonic() - self._fetched_at > self._cache_s:
            await self._refresh(time.monotonic())
        found = self._find(kid, alg)
        if found is None and self._may_refetch():
            await self._refresh(time.monotonic())
            found = self._find(kid, alg)
        if not self._keys:
            raise ServiceUnavailable("The identity provider's signing keys (JWKS) could not be fetched.")
        return found

    def _may_refetch(self) -> bool:
        return time.monotonic() - self._attempted_at >= self._min_refresh_s

    def _find(self, kid: str | None, alg: str) -> VerificationKey | None:
        if kid is None:
            candidates = list(self._keys.values())
            jwk = candidates[0] if len(candidates) == 1 else None
        else:
            jwk = self._keys.get(kid)
        if jwk is None or jwk.alg not in (None, alg):
            return None
        return jwk.key

    async def _refresh(self, requested_at: float) -> None:
        async with self._lock:
            if self._attempted_at >= requested_at:
                return  # another request refetched while this one waited
            self._attempted_at = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                logger.warning("JWKS fetch from %s failed: %s", self._url, type(exc).__name__)
                return
            self._keys, self._fetched_at = keys, self._attempted_at
            logger.info("JWKS fetched from %s: %d signing keys", self._url, len(keys))

    async def _fetch(self) -> dict[str, _Jwk]:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("a JWKS is an object with a 'keys' list")
        keys = {}
        for entry in entries:
            parsed = _parse(entry)
            if parsed is not None:
                keys[str(entry.get("kid", ""))] = parsed
        if not keys:
            raise ValueError("the JWKS holds no usable signing key")
        return keys


def _parse(entry: Any) -> _Jwk | None:
    """A public signing key, or None for what cannot verify a signature (encryption keys, unknown types)."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") not in PUBLIC_KTYS:
        return None
    try:
        jwk = jwt.PyJWK(entry)
    except jwt.PyJWTError:
        return None
    alg = entry.get("alg")
    return _Jwk(key=jwk.key, alg=alg if isinstance(alg, str) else None)


class StaticKey:
    """One configured key (a PEM public key or an HMAC secret) for every `kid`."""

    def __init__(self, key: VerificationKey) -> None:
        self._key = key

    async def key(self, kid: str | None, alg: str) -> VerificationKey | None:
        return self._key
