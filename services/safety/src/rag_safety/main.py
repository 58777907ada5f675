from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app

from .ports import Detectors, InjectionClassifier, PiiDetector
from .routes import router
from .service import Policy
from .settings import Settings


class State(TypedDict):
    detectors: Detectors
    policy: Policy


def load_pii_detector(settings: Settings) -> PiiDetector:
    from .adapters.presidio_pii import PresidioPiiDetector

    return PresidioPiiDetector(
        entities=settings.pii_entities,
        score_threshold=settings.pii_score_threshold,
        model_name=settings.pii_model,
    )


def load_injection_classifier(settings: Settings) -> InjectionClassifier:
    from .adapters.injection import NanoGuardClassifier

    return NanoGuardClassifier(device=settings.injection_device)


async def _load_classifier_if_enabled(settings: Settings) -> InjectionClassifier | None:
    if not settings.injection_classifier_enabled:
        return None
    return await run_in_threadpool(load_injection_classifier, settings)


async def load_detectors(settings: Settings) -> Detectors:
    """Loads the spaCy pipeline and the classifier side by side, each in a worker thread."""
    from .adapters.injection import injection_rules
    from .adapters.moderation import moderation_rules

    pii, classifier = await asyncio.gather(
        run_in_threadpool(load_pii_detector, settings),
        _load_classifier_if_enabled(settings),
    )
    return Detectors(
        pii=pii,
        injection_rules=injection_rules(),
        injection_classifier=classifier,
        moderation=moderation_rules(),
    )


def create_app(settings: Settings | None = None, detectors: Detectors | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        yield {
            "detectors": detectors or await load_detectors(settings),
            "policy": Policy.from_settings(settings),
        }

    return create_service_app(
        service="safety",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="PII redaction, prompt-injection detection and output moderation.",
    )
