"""Key management from a shell, straight against Redis with the gateway's own store code.

    python -m rag_gateway.keys create --tenant acme --name ci --scope query --scope ingest
    python -m rag_gateway.keys list [--tenant acme]
    python -m rag_gateway.keys rotate key_0123abcd
    python -m rag_gateway.keys revoke key_0123abcd

Redis comes from `--redis-url` or `GATEWAY_REDIS_URL`. Answers are JSON on stdout; `create` and
`rotate` print the secret once (it is stored only as a SHA-256 digest). Errors go to stderr, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import get_args

from pydantic import BaseModel, ValidationError

from rag_common.errors import ServiceError

from . import apikeys as apikeys_service
from .adapters import redis_store
from .ports import Scope


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m rag_gateway.keys", description="Manage gateway API keys.")
    root.add_argument("--redis-url", help="Default: GATEWAY_REDIS_URL or redis://127.0.0.1:6379/0.")
    commands = root.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="Create a key; prints its secret once.")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", choices=get_args(Scope), dest="scopes")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", help="ISO 8601 time (UTC without a zone).")
    expiry.add_argument("--expires-in-days", type=float)
    create.add_argument("--requests-per-minute", type=int)
    create.add_argument("--tokens-per-minute", type=int)
    create.add_argument("--safety-policy", help="A policy name of the safety service (SAFETY_POLICIES).")
    listing = commands.add_parser("list", help="List keys (never their secrets).")
    listing.add_argument("--tenant")
    for name, text in (("rotate", "New secret for a key; the old one stops working."), ("revoke", "Revoke.")):
        commands.add_parser(name, help=text).add_argument("key_id")
    return root


def _spec(args: argparse.Namespace) -> apikeys_service.KeySpec:
    expires_at: datetime | str | None = args.expires_at
    if args.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    return apikeys_service.KeySpec.model_validate(
        {
            "tenant": args.tenant,
            "name": args.name,
            "scopes": args.scopes or ["query"],
            "expires_at": expires_at,
            "requests_per_minute": args.requests_per_minute,
            "tokens_per_minute": args.tokens_per_minute,
            "safety_policy": args.safety_policy,
        }
    )


async def run(args: argparse.Namespace, redis_url: str) -> BaseModel | None:
    redis = redis_store.connect(redis_url, timeout_s=5.0)
    store = redis_store.RedisKeyStore(redis)
    try:
        if args.command == "create":
            return await apikeys_service.create(_spec(args), store=store)
        if args.command == "list":
            return await apikeys_service.list_keys(store=store, tenant=args.tenant)
        if args.command == "rotate":
            return await apikeys_service.rotate(args.key_id, store=store)
        await apikeys_service.revoke(args.key_id, store=store)
        return None
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.redis_url:
        redis_url = args.redis_url
    else:
        from .settings import Settings

        redis_url = Settings().redis_url
    try:
        result = asyncio.run(run(args, redis_url))
    except (ServiceError, ValidationError) as exc:
        message = exc.detail if isinstance(exc, ServiceError) else str(exc)
        sys.stderr.write(f"error: {message}\n")
        return 1
    output = result.model_dump(mode="json") if result else {"revoked": args.key_id}
    sys.stdout.write(json.dumps(output, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
