"""`LeanRoute`: an `APIRoute` whose valid requests skip FastAPI's generic request handling.

For the few routes every user request passes. A request whose body is a valid JSON document of the
route's model is read with one `model_validate_json`; the route's dependencies, plain `async def`
functions of the request, are called in their order; the endpoint returns its own `Response`. Any
other request (another content type, an empty body, invalid JSON or fields) goes to FastAPI's own
handler, so validation errors, their order against the dependencies and their format stay
FastAPI's, and so does the OpenAPI (and `app.dependency_overrides`, when any are set). FastAPI resolves dependencies before it validates the body, so
a valid body meets the same dependency outcomes either way.

Measured on a minimal route (a model body, one such dependency, a ready `Response`): 0.105 ms of
CPU per request through FastAPI's handler, 0.057 ms without it (docs/benchmarks.md).

A route of any other shape (more parameters, sub-dependencies, a response model) is handled by
FastAPI as usual; `is_lean` tells which.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import fastapi.routing
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

JSON = "application/json"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
RequestDependency = Callable[[Request], Awaitable[Any]]


class LeanRoute(APIRoute):
    @property
    def is_lean(self) -> bool:
        return _lean_shape(self) is not None

    def get_route_handler(self) -> Handler:
        generic = super().get_route_handler()
        # Included in a router or app, the route is handled as that inclusion sees it (its added
        # dependencies, its app's overrides), as FastAPI's own get_route_handler does.
        route = _as_included(self)
        shape = _lean_shape(route)
        if shape is None:
            return generic
        model, body_name, dependencies = shape
        endpoint = route.dependant.call
        assert endpoint is not None
        overrides = getattr(route.dependency_overrides_provider, "dependency_overrides", None)

        async def handle(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if content_type.partition(";")[0].strip().lower() != JSON or overrides:
                return await generic(request)
            raw = await request.body()
            try:
                body = model.model_validate_json(raw) if raw else None
            except ValidationError:
                body = None
            if body is None:
                return await generic(request)
            values: dict[str, Any] = {body_name: body}
            for name, dependency in dependencies:
                values[name] = await dependency(request)
            response: Response = await endpoint(**values)
            return response

        return handle


def _as_included(route: APIRoute) -> Any:
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    return context if context is not None and context.original_route is route else route


def _lean_shape(route: Any) -> tuple[type[BaseModel], str, list[tuple[str, RequestDependency]]] | None:
    """The body model, its parameter name and the dependencies, when the route fits; else None."""
    dependant: Dependant = route.dependant
    if (
        not inspect.iscoroutinefunction(dependant.call)
        or route.response_field is not None
        or len(dependant.body_params) != 1
        or route._embed_body_fields
        or _takes_more_than_the_request(dependant, allow_dependencies=True)
        or dependant.request_param_name is not None
    ):
        return None
    body = dependant.body_params[0]
    model = body.field_info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    dependencies: list[tuple[str, RequestDependency]] = []
    for sub in dependant.dependencies:
        if (
            sub.name is None
            or not inspect.iscoroutinefunction(sub.call)
            or sub.request_param_name is None
            or _takes_more_than_the_request(sub, allow_dependencies=False)
        ):
            return None
        dependencies.append((sub.name, sub.call))
    return model, body.name, dependencies


def _takes_more_than_the_request(dependant: Dependant, *, allow_dependencies: bool) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or (dependant.body_params and not allow_dependencies)
        or (dependant.dependencies and not allow_dependencies)
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )
