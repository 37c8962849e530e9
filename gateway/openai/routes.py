"""Client-facing OpenAI endpoints. Routes only map paths to the proxy service."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response.base import ASGIResponse

from gateway.http import to_asgi
from gateway.proxy.service import ProxyService

__all__ = ["chat_completions", "embeddings", "list_models"]


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
