from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from . import tenancy
from .pipeline import Pipeline


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.state.pipeline
    return pipeline


def get_tenant(
    tenant: Annotated[
        str | None,
        Header(
            alias=tenancy.TENANT_HEADER,
            description="Set by the gateway from the caller's key; absent for direct internal calls.",
        ),
    ] = None,
) -> str:
    return tenancy.tenant_from(tenant)


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
TenantDep = Annotated[str, Depends(get_tenant)]
