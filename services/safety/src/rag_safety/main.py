from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app
from rag_common.middleware import CancelOnDisconnectMiddleware

from . import malloc
from .policy import PolicyBook
from .ports import Detectors, Embedder, InjectionClassifier, PiiDetector
from .routes import router
from .settings import Settings


class State(TypedDict):
    detectors: Detectors
    policies: PolicyBook
    settings: Settings


def load_pii_detector(settings: Settings) -> PiiDetector:
    from .adapters.presidio_pii import PresidioPiiDetector

    return PresidioPiiDetector(
        entities=settings.pii_entities,
        score_threshold=settings.pii_score_threshold,
        model_name=settings.pii_model,
    )


def load_injection_classifier(settings: Settings) -> InjectionClassifier:
    from .adapters.injection import NanoGuardClassifier

    return NanoGuardClassifier(device=settings.injection_device, batch_size=settings.passages_batch_size)


def load_embedder(settings: Settings) -> Embedder:
    from .adapters.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        model_path=settings.grounding_model_path, device=settings.grounding_device
    )


async def _load_classifier_if_enabled(settings: Settings) -> InjectionClassifier | None:
    if not settings.injection_classifier_enabled:
        return None
    return await run_in_threadpool(load_injection_classifier, settings)


async def _load_embedder_if_enabled(settings: Settings) -> Embedder | None:
    if not settings.grounding_enabled:
        return None
    return await run_in_threadpool(load_embedder, settings)


async def load_detectors(settings: Settings) -> Detectors:
    """Loads spaCy, the classifier and the embedding model side by side, each in a worker thread."""
    from .adapters.injection import injection_rules
    from .adapters.leak import VerbatimLeakDetector
    from .adapters.moderation import moderation_rules

    pii, classifier, embedder = await asyncio.gather(
        run_in_threadpool(load_pii_detector, settings),
        _load_classifier_if_enabled(settings),
        _load_embedder_if_enabled(settings),
    )
    return Detectors(
        pii=pii,
        injection_rules=injection_rules(),
        injection_classifier=classifier,
        moderation=moderation_rules(),
        leak=VerbatimLeakDetector(
            default_system_prompt=settings.leak_system_prompt, phrases=settings.leak_phrases
        ),
        embedder=embedder,
    )


def create_app(settings: Settings | None = None, detectors: Detectors | None = None) -> FastAPI:
    settings = settings or Settings()
    malloc.fix_mmap_threshold(settings.malloc_mmap_threshold_bytes)
    policies = PolicyBook.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        yield {
            "detectors": detectors or await load_detectors(settings),
            "policies": policies,
            "settings": settings,
        }

    app = create_service_app(
        service="safety",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="PII redaction, prompt-injection detection, passage screening, output moderation, "
        "system-prompt leak detection and grounding scores.",
    )
    # The orchestrator drops its input check whenever the embedding call beside it fails first.
    app.add_middleware(CancelOnDisconnectMiddleware)
    return app
