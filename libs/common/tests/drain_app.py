"""A tiny service that streams slowly, run by `rag_common.serve` in a real process by test_serve.py."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from pydantic_settings import SettingsConfigDict

from rag_common.app import create_service_app
from rag_common.settings import ServiceSettings

router = APIRouter()


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DRAINAPP_", extra="ignore")


@router.get("/stream")
async def stream(events: int = 20, interval_s: float = 0.1) -> StreamingResponse:
    async def sse() -> AsyncIterator[str]:
        for index in range(events):
            yield f"data: {index}\n\n"
            await asyncio.sleep(interval_s)
        yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")


@router.get("/gc")
async def collector() -> dict[str, int]:
    return {"young_threshold": gc.get_threshold()[0]}


@router.get("/ping")
async def ping() -> dict[str, str]:
    return {"pong": "ok"}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="drain-test", settings=settings or Settings(), lifespan=lifespan, routers=[router]
    )
