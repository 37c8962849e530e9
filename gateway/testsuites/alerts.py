"""Quality alerts: written when a scheduled run degrades, read by `GET /admin/alerts`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.base import utcnow
from gateway.db.models import Alert
from gateway.ids import new_id

__all__ = ["AlertRecord", "AlertStore"]


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    prompt: str | None
    schedule_id: str | None
    run_id: str | None
    message: str
    details: dict[str, Any]
    created_at: datetime


def _record(row: Alert) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        kind=row.kind,
        prompt=row.prompt_slug,
        schedule_id=row.schedule_id,
        run_id=row.run_id,
        message=row.message,
        details=dict(row.details or {}),
        created_at=row.created_at,
    )


class AlertStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(
        self,
        kind: str,
        message: str,
        *,
        prompt: str | None = None,
        schedule_id: str | None = None,
        run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AlertRecord:
        row = Alert(
            id=new_id(),
            kind=kind,
            prompt_slug=prompt,
            schedule_id=schedule_id,
            run_id=run_id,
            message=message,
            details=details or {},
            created_at=utcnow(),
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _record(row)

    async def list(
        self, *, limit: int, since: datetime | None = None, prompt: str | None = None
    ) -> list[AlertRecord]:
        query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
        if since is not None:
            query = query.where(Alert.created_at >= since)
        if prompt is not None:
            query = query.where(Alert.prompt_slug == prompt)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_record(row) for row in rows]
