from __future__ import annotations

import pytest

from rag_embedding.settings import ModelLayout, Settings, usable_cores


@pytest.mark.parametrize(
    ("settings", "layout"),
    [
        (Settings(), ModelLayout(workers=8, threads=1)),
        (Settings(model_workers=2), ModelLayout(workers=2, threads=4)),
        (Settings(model_workers=3), ModelLayout(workers=3, threads=2)),
        (Settings(model_workers=16), ModelLayout(workers=16, threads=1)),
        (Settings(device="cuda"), ModelLayout(workers=1, threads=8)),
        (Settings(backend="onnx", device="cuda"), ModelLayout(workers=8, threads=1)),
        (Settings(backend="onnx", model_workers=2, onnx_threads=3), ModelLayout(workers=2, threads=3)),
    ],
)
def test_the_cores_are_split_between_model_calls(settings: Settings, layout: ModelLayout) -> None:
    assert settings.model_layout(cores=8) == layout


def test_the_layout_uses_the_cores_this_process_may_run_on() -> None:
    assert Settings().model_layout().workers == usable_cores() >= 1
