"""Bearer JWTs from an identity provider: verified, then mapped to what an API key record gives.

A verified token admits a caller exactly like a key: its tenant comes from a claim, its scopes from
another (mapped to the gateway's), and its per-key rate limits are counted per `sub`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from rag_common.errors import Unauthorized

from .adapters.jwks import JwksKeys, StaticKey, VerificationKey
from .apikeys import TENANT_PATTERN
from .ports import ALL_SCOPES, ApiKeyRecord, Scope
from .settings import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, Settings

JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
SUBJECT_PREFIX = "jwt:"
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Named back in a refusal; any other `alg` value is client text and is not echoed.
KNOWN_ALGORITHMS = {"none", "EdDSA", *HMAC_ALGORITHMS, *ASYMMETRIC_ALGORITHMS}
KEY_TYPES: dict[str, type | tuple[type, ...]] = {
    "HS": bytes,
    "RS": rsa.RSAPublicKey,
    "PS": rsa.RSAPublicKey,
    "ES": ec.EllipticCurvePublicKey,
}
CLAIM_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired (exp)."),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat is in the future)."),
    (jwt.InvalidIssuerError, "The token's issuer (iss) is not the one this gateway trusts."),
    (jwt.InvalidAudienceError, "The token's audience (aud) does not name this gateway."),
    (jwt.InvalidSignatureError, "The token's signature is not valid."),
    (
        jwt.InvalidKeyError,
        "The token's signature cannot be checked with the provider's key for its algorithm.",
    ),
    (jwt.InvalidAlgorithmError, "The token's algorithm (alg) is not accepted."),
    (jwt.DecodeError, "The token is malformed."),
)


class KeySource(Protocol):
    async def key(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key that verifies tokens signed with `alg` under `kid`; None when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class JwtVerifier:
    settings: Settings
    public_keys: KeySource | None
    shared_secret: KeySource | None

    def source(self, alg: str) -> KeySource | None:
        # HS tokens are checked with the shared secret only, never with a public key (alg confusion).
        return self.shared_secret if alg in HMAC_ALGORITHMS else self.public_keys


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    record: ApiKeyRecord
    subject: str


def looks_like_jwt(credential: str) -> bool:
    return JWT_SHAPE.fullmatch(credential) is not None


def verifier_from(settings: Settings) -> JwtVerifier | None:
    """None when JWT auth is not configured; a bad PEM key fails here, at start-up."""
    if not settings.jwt_enabled:
        return None
    public_keys: KeySource | None = None
    if settings.jwt_jwks_url:
        public_keys = JwksKeys(
            settings.jwt_jwks_url,
            cache_s=settings.jwt_jwks_cache_s,
            min_refresh_s=settings.jwt_jwks_min_refresh_s,
            timeout_s=settings.jwt_jwks_timeout_s,
        )
    elif settings.jwt_public_key:
        public_keys = StaticKey(_pem_key(settings.jwt_public_key))
    secret = settings.jwt_shared_secret.get_secret_value() if settings.jwt_shared_secret else ""
    return JwtVerifier(settings, public_keys, StaticKey(secret.encode()) if secret else None)


def _pem_key(pem: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ValueError("GATEWAY_JWT_PUBLIC_KEY is not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("GATEWAY_JWT_PUBLIC_KEY must be an RSA or EC public key")
    return key


async def verify(token: str, *, verifier: JwtVerifier) -> VerifiedToken:
    """Signature, algorithm, expiry, issuer, audience and tenant checked; 401 naming the check that failed."""
    settings = verifier.settings
    header = _header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in settings.jwt_algorithms:
        shown = alg if isinstance(alg, str) and alg in KNOWN_ALGORITHMS else "?"
        raise Unauthorized(
            f"The token's algorithm '{shown}' is not accepted; accepted: {', '.join(settings.jwt_algorithms)}."
        )
    kid = header.get("kid")
    source = verifier.source(alg)
    key = await source.key(kid if isinstance(kid, str) else None, alg) if source else None
    if key is None:
        raise Unauthorized("The token's signing key (kid) is not one the identity provider publishes.")
    if not isinstance(key, KEY_TYPES[alg[:2]]):
        raise Unauthorized(f"The token's algorithm '{alg}' does not match the type of the provider's key.")
    claims = _decode(token, key, alg, settings)
    return VerifiedToken(record=_record(claims, settings), subject=_subject(claims))


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("The token is malformed.") from None


def _decode(token: str, key: VerificationKey, alg: str, settings: Settings) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"The token lacks the required '{exc.claim}' claim.") from None
    except jwt.PyJWTError as exc:
        detail = next(
            (text for kind, text in CLAIM_ERRORS if isinstance(exc, kind)), "The token is not valid."
        )
        raise Unauthorized(detail) from None


def _record(claims: dict[str, Any], settings: Settings) -> ApiKeyRecord:
    tenant = claims.get(settings.jwt_tenant_claim)
    if tenant is None:
        raise Unauthorized(f"The token lacks the '{settings.jwt_tenant_claim}' claim naming the tenant.")
    if not isinstance(tenant, str) or not re.fullmatch(TENANT_PATTERN, tenant):
        raise Unauthorized(f"The token's '{settings.jwt_tenant_claim}' claim is not a valid tenant name.")
    return ApiKeyRecord(
        tenant=tenant,
        name="jwt",
        scopes=scopes(claims.get(settings.jwt_scope_claim), settings),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        requests_per_minute=settings.jwt_rate_limit_per_minute,
        tokens_per_minute=settings.jwt_tokens_per_minute,
    )


def scopes(value: object, settings: Settings) -> tuple[Scope, ...]:
    """The gateway scopes a claim grants: a space-separated string or a list, mapped, then prefix-stripped."""
    values = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    granted: list[Scope] = []
    prefix = settings.jwt_scope_prefix
    for item in (v for v in values if isinstance(v, str)):
        mapped = settings.jwt_scope_map.get(item)
        name = mapped or (item.removeprefix(prefix) if item.startswith(prefix) else "")
        granted.extend(s for s in ALL_SCOPES if s == name and s not in granted)
    return tuple(granted)


def _subject(claims: dict[str, Any]) -> str:
    """Rate limits count per `sub`; hashed, so a client-chosen claim never reaches Redis keys or logs."""
    issuer_and_subject = f"{claims['iss']}\n{claims['sub']}".encode()
    return SUBJECT_PREFIX + hashlib.sha256(issuer_and_subject).hexdigest()[:32]
