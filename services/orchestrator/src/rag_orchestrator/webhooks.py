"""Job webhooks: where they may go, how they are signed, and their delivery with retries.

The signature follows Stripe's scheme: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">` keyed with ORCHESTRATOR_WEBHOOK_SECRET. A receiver recomputes it over the raw
body, compares in constant time (`verify` below) and refuses a `t` too far from its clock, which
stops replays. Webhooks go only to allow-listed hosts, so a caller cannot make the orchestrator
call into the private network (SSRF); redirects are never followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from rag_common.contracts import WebhookState
from rag_common.errors import UnprocessableContent

from .settings import Settings

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_S = 300


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        """True when the receiver answered 2xx."""
        ...


def check_url(url: str, settings: Settings) -> None:
    """422 unless webhooks are configured and the URL's host is allow-listed."""
    if not settings.webhook_allowed_hosts or settings.webhook_secret is None:
        raise UnprocessableContent(
            "webhook_url: webhooks are off on this server; it needs ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS "
            "and ORCHESTRATOR_WEBHOOK_SECRET."
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnprocessableContent("webhook_url: an absolute http(s) URL is required.")
    if parts.hostname.lower() not in settings.webhook_allowed_hosts:
        raise UnprocessableContent(
            f"webhook_url: host '{parts.hostname}' is not in ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS.",
            extra={"host": parts.hostname},
        )


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: a fresh timestamp and a matching HMAC over the raw body."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


async def deliver(
    url: str, body: bytes, *, secret: str, sender: WebhookSender, backoff_s: Sequence[float]
) -> WebhookState:
    """Each attempt is signed afresh (a new `t`); after the last pause it is recorded failed."""
    for attempt in range(len(backoff_s) + 1):
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, body, int(time.time())),
        }
        if await sender.post(url, body, headers):
            return "delivered"
        if attempt < len(backoff_s):
            logger.warning("webhook to %s not accepted; retrying in %.1f s", url, backoff_s[attempt])
            await asyncio.sleep(backoff_s[attempt])
    return "failed"
