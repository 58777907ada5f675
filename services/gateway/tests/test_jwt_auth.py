"""Bearer JWTs from an identity provider, verified against a JWKS served by a real HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from pydantic import ValidationError

from rag_gateway.jwt_auth import verifier_from
from rag_gateway.settings import Settings

from .conftest import DEV_KEY, GatewayFactory, bearer, serve_in_thread

ISSUER = "https://idp.example.test/"
AUDIENCE = "rag-gateway"
QUERY = {"question": "what is rag?"}
DOCS = {"documents": [{"text": "Retrieval-augmented generation."}]}


@dataclass
class Provider:
    """An identity provider's signing keys, published as a JWKS at `url`; `fetches` counts GETs."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    fetches: int = 0

    def publish(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid, key in self.keys.items():
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            entries.append(public | {"kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": entries}

    def token(
        self, kid: str = "k1", *, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": "acme", "scope": "query ingest"}
        body |= {"iat": now, "exp": now + 300} | claims
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(
            body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid} | (headers or {})
        )


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    state = Provider()
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        state.fetches += 1
        return state.jwks()

    url, stop = serve_in_thread(app)
    state.url = f"{url}/.well-known/jwks.json"
    yield state
    stop()


@pytest.fixture
def idp(provider: Provider) -> Provider:
    provider.keys.clear()
    provider.publish("k1")
    provider.fetches = 0
    return provider


def jwt_settings(idp: Provider, **overrides: Any) -> dict[str, Any]:
    return {
        "jwt_jwks_url": idp.url,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_jwks_min_refresh_s": 0,
    } | overrides


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")  # noqa: E731
    return encode(header) + b"." + encode(claims)


async def test_valid_token_answers_for_the_tenant_in_its_claim(
    gateway: GatewayFactory, idp: Provider
) -> None:
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post(
            "/v1/rag/query", json=QUERY, headers=bearer(idp.token()) | {"X-Tenant-ID": "globex"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == "acme"  # the claim reached the orchestrator, not the client header
    assert response.json()["answer"] == "hello"


async def test_tenant_claim_name_is_configurable(gateway: GatewayFactory, idp: Provider) -> None:
    token = idp.token(tenant=None, org="initech")
    async with gateway(**jwt_settings(idp, jwt_tenant_claim="org")) as client:
        response = await client.post("/v1/documents", json=DOCS, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == "initech"


async def test_prefixed_scopes_map_to_gateway_scopes(gateway: GatewayFactory, idp: Provider) -> None:
    token = idp.token(scope="openid rag:query profile")
    async with gateway(**jwt_settings(idp, jwt_scope_prefix="rag:")) as client:
        query = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
        ingest = await client.post("/v1/documents", json=DOCS, headers=bearer(token))
        unprefixed = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token(scope="query")))
    assert query.status_code == 200, query.text
    assert ingest.status_code == 403
    assert ingest.headers["content-type"] == "application/problem+json"
    assert ingest.json()["detail"] == "The token lacks the 'ingest' scope this endpoint needs."
    assert ingest.json()["required_scope"] == "ingest"
    assert unprefixed.status_code == 403


async def test_a_list_claim_of_roles_maps_through_the_scope_map(
    gateway: GatewayFactory, idp: Provider
) -> None:
    token = idp.token(scope=None, roles=["rag-writer", "unrelated"])
    settings = jwt_settings(idp, jwt_scope_claim="roles", jwt_scope_map={"rag-writer": "ingest"})
    async with gateway(**settings) as client:
        ingest = await client.post("/v1/documents", json=DOCS, headers=bearer(token))
        query = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
    assert ingest.status_code == 200, ingest.text
    assert query.status_code == 403


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"exp": int(time.time()) - 3600}, "The token has expired (exp)."),
        (
            {"iss": "https://evil.example.test/"},
            "The token's issuer (iss) is not the one this gateway trusts.",
        ),
        ({"aud": "another-api"}, "The token's audience (aud) does not name this gateway."),
        ({"tenant": None}, "The token lacks the 'tenant' claim naming the tenant."),
        ({"tenant": "acme\r\nX-Evil: 1"}, "The token's 'tenant' claim is not a valid tenant name."),
        ({"sub": None}, "The token lacks the required 'sub' claim."),
        ({"nbf": int(time.time()) + 3600}, "The token is not valid yet (nbf or iat is in the future)."),
    ],
    ids=["expired", "wrong-issuer", "wrong-audience", "no-tenant", "bad-tenant", "no-sub", "not-yet-valid"],
)
async def test_failed_claim_checks_are_401_naming_the_check(
    gateway: GatewayFactory, idp: Provider, claims: dict[str, Any], detail: str
) -> None:
    token = idp.token(**claims)
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == detail
    assert token not in response.text


async def test_a_signature_by_another_key_is_refused(gateway: GatewayFactory, idp: Provider) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token(key=forger)))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token's signature is not valid."


async def test_alg_none_is_refused(gateway: GatewayFactory, idp: Provider) -> None:
    claims = jwt.decode(idp.token(), options={"verify_signature": False})
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, claims).decode() + "."
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("The token's algorithm 'none' is not accepted")


async def test_hs256_signed_with_the_public_key_is_refused(gateway: GatewayFactory, idp: Provider) -> None:
    """Algorithm confusion: the public key (which anyone may fetch) used as an HMAC secret."""
    pem = (
        idp.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = jwt.decode(idp.token(), options={"verify_signature": False})
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims)
    signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    token = (signing_input + b"." + signature).decode()
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("The token's algorithm 'HS256' is not accepted")


async def test_rotated_keys_are_fetched_when_an_unknown_kid_arrives(
    gateway: GatewayFactory, idp: Provider
) -> None:
    async with gateway(**jwt_settings(idp)) as client:
        before = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token("k1")))
        again = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token("k1")))
        assert idp.fetches == 1  # cached
        idp.keys.clear()
        idp.publish("k2")
        rotated = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token("k2")))
        assert idp.fetches == 2
        old_key = await client.post(
            "/v1/rag/query", json=QUERY, headers=bearer(idp.token("k2", headers={"kid": "k1"}))
        )
    assert [before.status_code, again.status_code, rotated.status_code] == [200, 200, 200]
    assert old_key.status_code == 401
    assert (
        old_key.json()["detail"]
        == "The token's signing key (kid) is not one the identity provider publishes."
    )


async def test_unknown_kids_refetch_at_most_once_per_min_refresh(
    gateway: GatewayFactory, idp: Provider
) -> None:
    async with gateway(**jwt_settings(idp, jwt_jwks_min_refresh_s=60)) as client:
        assert (
            await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token()))
        ).status_code == 200
        for n in range(3):
            token = idp.token(headers={"kid": f"made-up-{n}"})
            response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
            assert response.status_code == 401
    assert idp.fetches == 1


async def test_an_unreachable_jwks_is_503_not_401(gateway: GatewayFactory, idp: Provider) -> None:
    async with gateway(**jwt_settings(idp, jwt_jwks_url=idp.url.replace("jwks.json", "gone"))) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token()))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_each_subject_gets_its_own_request_limit(gateway: GatewayFactory, idp: Provider) -> None:
    async with gateway(**jwt_settings(idp, jwt_rate_limit_per_minute=2)) as client:
        alice = [
            (
                await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token(sub="alice")))
            ).status_code
            for _ in range(3)
        ]
        bob = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token(sub="bob")))
    assert alice == [200, 200, 429]
    assert bob.status_code == 200
    assert '"per-key";q=2' in bob.headers["RateLimit-Policy"]
    assert '"per-tenant";q=600' in bob.headers["RateLimit-Policy"]


async def test_api_keys_still_work_beside_jwts(gateway: GatewayFactory, idp: Provider) -> None:
    async with gateway(**jwt_settings(idp)) as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(DEV_KEY))
    assert response.status_code == 200
    assert response.json()["tenant"] == "dev"


async def test_without_jwt_settings_a_token_is_just_an_unknown_key(
    gateway: GatewayFactory, idp: Provider
) -> None:
    async with gateway() as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=bearer(idp.token()))
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is not valid."
    assert idp.fetches == 0


async def test_a_static_pem_key_verifies_es256_tokens(gateway: GatewayFactory) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "svc",
        "tenant": "acme",
        "scope": "query",
        "exp": now + 60,
    }
    settings = {"jwt_public_key": pem.decode(), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    async with gateway(**settings) as client:
        good = await client.post(
            "/v1/rag/query", json=QUERY, headers=bearer(jwt.encode(claims, key, "ES256"))
        )
        rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        wrong_type = await client.post(
            "/v1/rag/query", json=QUERY, headers=bearer(jwt.encode(claims, rs, "RS256"))
        )
    assert good.status_code == 200, good.text
    assert wrong_type.status_code == 401


async def test_an_explicit_shared_secret_allows_hs256(gateway: GatewayFactory) -> None:
    secret = "s" * 48
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "svc",
        "tenant": "acme",
        "scope": "query",
        "exp": now + 60,
    }
    settings = {
        "jwt_shared_secret": secret,
        "jwt_algorithms": "HS256",
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }
    async with gateway(**settings) as client:
        good = await client.post(
            "/v1/rag/query", json=QUERY, headers=bearer(jwt.encode(claims, secret, "HS256"))
        )
        forged = jwt.encode(claims, "x" * 48, "HS256")
        bad = await client.post("/v1/rag/query", json=QUERY, headers=bearer(forged))
    assert good.status_code == 200, good.text
    assert bad.status_code == 401


async def test_tokens_never_reach_the_logs(
    gateway: GatewayFactory, idp: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = [idp.token(), idp.token(aud="x"), idp.token(headers={"kid": "nope"})]
    async with gateway(**jwt_settings(idp), log_level="DEBUG") as client:
        for token in tokens:
            await client.post("/v1/rag/query", json=QUERY, headers=bearer(token))
    logged = capsys.readouterr().out
    assert "JWKS fetched" in logged
    assert not any(token in logged or token.split(".")[2] in logged for token in tokens)


@pytest.mark.parametrize(
    "settings",
    [
        {"jwt_algorithms": "RS256,none"},
        {"jwt_algorithms": "HS256"},
        {"jwt_audience": None},
        {"jwt_public_key": "pem"},
        {"jwt_shared_secret": "too-short", "jwt_algorithms": "HS256"},
    ],
    ids=["none", "hs-without-secret", "no-audience", "jwks-and-pem", "short-secret"],
)
def test_unsafe_jwt_settings_are_refused(settings: dict[str, Any]) -> None:
    values = {"jwt_jwks_url": "http://idp/jwks", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE} | settings
    with pytest.raises(ValidationError):
        Settings(**values)


def test_a_public_key_that_is_not_pem_fails_at_start_up() -> None:
    settings = Settings(jwt_public_key="not a key", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    with pytest.raises(ValueError, match="GATEWAY_JWT_PUBLIC_KEY is not a PEM public key"):
        verifier_from(settings)
