"""What the tests build the service from: the real model and an in-process client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from rag_llm.backends.llamacpp import LlamaCppBackend

MODEL = "smollm2-135m-instruct"


def llama_backend_for_tests() -> LlamaCppBackend:
    """The packaged SmolLM2 GGUF with a small context on one thread.

    One thread is plenty for a 135M model, and it stays fast when other jobs load the CPU, where
    llama.cpp's spinning thread barriers slow down many times over.
    """
    return LlamaCppBackend(model_name=MODEL, model_path=None, context_window=1024, n_threads=1, gpu_layers=0)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process client."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://llm") as client:
            yield client
