from __future__ import annotations

from pathlib import Path

import pytest

from rag_embedding.settings import ModelLayout, Settings, cpu_quota, usable_cores


@pytest.mark.parametrize(
    ("settings", "layout"),
    [
        (Settings(), ModelLayout(workers=8, threads=1)),
        (Settings(backend="torch"), ModelLayout(workers=4, threads=2)),
        (Settings(backend="onnx"), ModelLayout(workers=8, threads=1)),
        (Settings(backend="torch", model_workers=2), ModelLayout(workers=2, threads=4)),
        (Settings(model_workers=3), ModelLayout(workers=3, threads=2)),
        (Settings(model_workers=16), ModelLayout(workers=16, threads=1)),
        (Settings(device="cuda"), ModelLayout(workers=1, threads=8)),
        (Settings(backend="onnx", model_workers=2, onnx_threads=3), ModelLayout(workers=2, threads=3)),
    ],
)
def test_the_cores_are_split_between_model_calls(settings: Settings, layout: ModelLayout) -> None:
    assert settings.model_layout(cores=8) == layout


def test_the_layout_uses_the_cores_this_process_may_run_on() -> None:
    assert Settings(backend="onnx").model_layout().workers == usable_cores() >= 1


def test_torch_runs_at_most_four_calls_at_once_by_default() -> None:
    assert Settings(backend="torch").model_layout(cores=2) == ModelLayout(workers=2, threads=1)
    assert Settings(backend="torch").model_layout(cores=16) == ModelLayout(workers=4, threads=4)


def test_the_default_backend_is_the_onnx_export_on_cpu_and_torch_elsewhere() -> None:
    assert Settings().backend == "onnx-export"
    assert Settings(device="cuda:0").backend == "torch"
    assert Settings().served_model_name() == Settings(backend="torch").served_model_name()


@pytest.mark.parametrize("backend", ["onnx", "onnx-export"])
def test_onnxruntime_on_a_gpu_is_refused_naming_the_fix(backend: str) -> None:
    with pytest.raises(ValueError, match="EMBEDDING_BACKEND=torch for EMBEDDING_DEVICE=cuda"):
        Settings(backend=backend, device="cuda")


def test_the_export_shares_the_torch_models_fingerprint_and_int8_does_not(tmp_path: Path) -> None:
    def fingerprint(**config: str) -> dict[str, object]:
        return Settings(**config).backend_config().fingerprint()

    assert fingerprint(backend="onnx-export") == fingerprint(backend="torch") == {"backend": "torch"}
    folder = str(tmp_path)
    assert fingerprint(backend="onnx-export", model_path=folder) == fingerprint(
        backend="torch", model_path=folder
    )
    assert fingerprint(backend="onnx") != fingerprint(backend="torch")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model_path", "is not a folder"),
        ("rerank_model_path", "is not a folder"),
        ("onnx_path", "is not a file"),
    ],
)
def test_a_model_path_that_is_not_there_is_refused_at_start(
    tmp_path: Path, setting: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**{setting: str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("cpu_max", "quota"),
    [("200000 100000\n", 2.0), ("150000 100000\n", 1.5), ("max 100000\n", None), ("", None)],
)
def test_a_container_cpu_limit_is_read_from_cgroup_v2(
    tmp_path: Path, cpu_max: str, quota: float | None
) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert cpu_quota(tmp_path) == quota


def test_the_cores_used_never_exceed_the_container_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores(tmp_path) == usable_cores(tmp_path / "missing") >= 1
