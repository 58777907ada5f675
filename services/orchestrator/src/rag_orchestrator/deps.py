from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .pipeline import Pipeline


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.state.pipeline
    return pipeline


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
