"""Webhook delivery over HTTP: one POST, never following redirects (they could leave the allow-list)."""

from __future__ import annotations

import logging

import httpx

logger = logging.getLogger(__name__)


class HttpWebhookSender:
    def __init__(self, *, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("webhook to %s failed: %s", url, type(exc).__name__)
            return False
        return response.is_success

    async def aclose(self) -> None:
        await self._client.aclose()
