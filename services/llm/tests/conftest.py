# No tests/__init__.py here on purpose: as package `tests`, this conftest would collide with another
# service's `tests.conftest` when the whole repository runs in one pytest session (importlib mode).
from __future__ import annotations

import pytest

from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.settings import Settings

from .harness import llama_backend_for_tests


@pytest.fixture(scope="session")
def llama_backend() -> LlamaCppBackend:
    """Loaded once (half a second, ~100 MB) and shared; tests never use it concurrently."""
    return llama_backend_for_tests()


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", default_max_tokens=24, default_temperature=0.0)
