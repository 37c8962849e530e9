"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.response.base import ASGIResponse
from sqlalchemy import text

from gateway.http import json_response
from gateway.runtime import Core

__all__ = ["healthz", "metrics", "readyz"]


@get("/healthz", summary="The process is alive", tags=["ops"])
async def healthz() -> ASGIResponse:
    return json_response(200, b'{"status":"ok"}')


@get(
    "/readyz",
    summary="The database and the budget store answer, and the request log is being written",
    tags=["ops"],
)
async def readyz(core: NamedDependency[Core]) -> ASGIResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with core.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if core.redis is not None:
        try:
            async with asyncio.timeout(2):
                await core.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    # Rows waiting with no write for longer than the bound: the log is stuck (a locked table,
    # a read-only database) even if the database answers SELECT 1.
    buffer = core.log_buffer
    waited = buffer.waiting_for()
    bound = core.settings.log.stall_after
    if waited > bound:
        error = buffer.last_error_kind or "none yet"
        checks["request_log"] = (
            f"stalled: {len(buffer)} rows waiting, none written for {waited:.0f}s "
            f"(SLUICE_LOG_STALL_AFTER={bound:g}); last error: {error}"
        )
    else:
        checks["request_log"] = "ok"
    ready = all(value == "ok" for value in checks.values())
    body = msgspec.json.encode({"status": "ok" if ready else "unavailable", "checks": checks})
    return json_response(200 if ready else 503, body)


@get("/metrics", summary="Prometheus metrics", tags=["ops"])
async def metrics(core: NamedDependency[Core]) -> ASGIResponse:
    core.metrics.log_buffer_depth.set(len(core.log_buffer))
    return ASGIResponse(
        body=core.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
