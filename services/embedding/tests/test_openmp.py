"""EMBEDDING_OMP_WAIT_POLICY reaches the OpenMP runtime only if set before torch loads: each case
runs in a fresh interpreter, as the service does."""

from __future__ import annotations

import os
import subprocess
import sys


def omp_wait_policy_after(code: str, **env: str) -> str:
    """Run `code` in a fresh Python; return the OMP_WAIT_POLICY its torch saw ('' when unset)."""
    clean = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    script = f"{code}\nimport os, torch\nprint(os.environ.get('OMP_WAIT_POLICY', ''))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


SET = "from rag_embedding.openmp import set_wait_policy\nset_wait_policy({policy!r})"


def test_passive_is_set_for_torch_when_torch_is_not_loaded_yet() -> None:
    assert omp_wait_policy_after(SET.format(policy="passive")) == "PASSIVE"
    assert omp_wait_policy_after(SET.format(policy="active")) == "ACTIVE"


def test_runtime_leaves_the_openmp_default() -> None:
    assert omp_wait_policy_after(SET.format(policy="runtime")) == ""


def test_an_explicit_omp_wait_policy_wins() -> None:
    assert omp_wait_policy_after(SET.format(policy="passive"), OMP_WAIT_POLICY="active") == "active"


def test_nothing_changes_once_torch_is_loaded() -> None:
    assert omp_wait_policy_after("import torch\n" + SET.format(policy="passive")) == ""


def test_the_service_sets_the_policy_before_it_loads_the_torch_model() -> None:
    code = (
        "from rag_embedding.main import load_embedder\nfrom rag_embedding.settings import Settings\n"
        "load_embedder(Settings(backend='torch'))"
    )
    assert omp_wait_policy_after(code) == "PASSIVE"
