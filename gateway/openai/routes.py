"""Client-facing OpenAI endpoints. Routes only map paths to the proxy service."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from gateway.http import json_response, to_asgi
from gateway.proxy.response_objects import ResponseObjects
from gateway.proxy.service import ProxyService

__all__ = [
    "RESPONSE_OBJECT_ROUTES",
    "chat_completions",
    "completions",
    "embeddings",
    "list_models",
    "moderations",
    "responses",
]


@post("/v1/chat/completions", summary="OpenAI Chat Completions (streamed or not)", tags=["openai"])
async def chat_completions(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.chat(request.scope["headers"], await request.body()))


@post("/v1/embeddings", summary="OpenAI Embeddings", tags=["openai"])
async def embeddings(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.embeddings(request.scope["headers"], await request.body()))


@get("/v1/models", summary="The models this key may call", tags=["openai"])
async def list_models(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.models(request.scope["headers"]))


@post("/v1/responses", summary="OpenAI Responses API (streamed or not)", tags=["openai"])
async def responses(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.responses(request.scope["headers"], await request.body()))


@post("/v1/completions", summary="OpenAI legacy Completions (streamed or not)", tags=["openai"])
async def completions(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.completions(request.scope["headers"], await request.body()))


@post("/v1/moderations", summary="OpenAI Moderations", tags=["openai"])
async def moderations(
    request: Request[Any, Any, Any], proxy: NamedDependency[ProxyService]
) -> ASGIResponse:
    return to_asgi(await proxy.moderations(request.scope["headers"], await request.body()))


async def _on_response(
    request: Request[Any, Any, Any],
    stored: ResponseObjects,
    response_id: str,
    action: str = "",
) -> ASGIResponse:
    reply, request_id = await stored.call(
        request.scope["headers"],
        request.method,
        response_id,
        action,
        request.scope["query_string"].decode("latin-1"),
    )
    return json_response(
        reply.status, reply.body, {**reply.headers, "x-sluice-request-id": request_id}
    )


@get("/v1/responses/{response_id:str}", summary="A stored response", tags=["openai"])
async def retrieve_response(
    request: Request[Any, Any, Any],
    response_objects: NamedDependency[ResponseObjects],
    response_id: FromPath[str],
) -> ASGIResponse:
    return await _on_response(request, response_objects, response_id)


@delete(
    "/v1/responses/{response_id:str}",
    summary="Delete a stored response",
    tags=["openai"],
    status_code=200,
)
async def delete_response(
    request: Request[Any, Any, Any],
    response_objects: NamedDependency[ResponseObjects],
    response_id: FromPath[str],
) -> ASGIResponse:
    return await _on_response(request, response_objects, response_id)


@get(
    "/v1/responses/{response_id:str}/input_items",
    summary="A stored response's input items",
    tags=["openai"],
)
async def response_input_items(
    request: Request[Any, Any, Any],
    response_objects: NamedDependency[ResponseObjects],
    response_id: FromPath[str],
) -> ASGIResponse:
    return await _on_response(request, response_objects, response_id, "/input_items")


@post(
    "/v1/responses/{response_id:str}/cancel",
    summary="Cancel a background response",
    tags=["openai"],
)
async def cancel_response(
    request: Request[Any, Any, Any],
    response_objects: NamedDependency[ResponseObjects],
    response_id: FromPath[str],
) -> ASGIResponse:
    return await _on_response(request, response_objects, response_id, "/cancel")


RESPONSE_OBJECT_ROUTES = (retrieve_response, delete_response, response_input_items, cancel_response)
