"""Reading the request log: filtered, cursor-paged lists and single rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import RequestLog

__all__ = ["LogFilter", "RequestLogQuery", "row_to_dict"]

COLUMNS = [column.key for column in RequestLog.__table__.columns]


@dataclass(slots=True)
class LogFilter:
    prompt: str | None = None
    version: int | None = None
    user: str | None = None
    session: str | None = None
    key_id: str | None = None
    model: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    is_test_run: bool | None = None
    status: int | None = None
    errors_only: bool | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        conditions = []
        if self.prompt is not None:
            conditions.append(RequestLog.prompt_slug == self.prompt)
        if self.version is not None:
            conditions.append(RequestLog.prompt_version == self.version)
        if self.user is not None:
            conditions.append(RequestLog.user == self.user)
        if self.session is not None:
            conditions.append(RequestLog.session == self.session)
        if self.key_id is not None:
            conditions.append(RequestLog.key_id == self.key_id)
        if self.model is not None:
            conditions.append(RequestLog.model_requested == self.model)
        for name, value in self.tags.items():
            conditions.append(RequestLog.tags[name].as_string() == value)
        if self.is_test_run is not None:
            conditions.append(RequestLog.is_test_run.is_(self.is_test_run))
        if self.status is not None:
            conditions.append(RequestLog.status_code == self.status)
        if self.errors_only is True:
            conditions.append(RequestLog.status_code >= 400)
        elif self.errors_only is False:
            conditions.append(RequestLog.status_code < 400)
        if self.since is not None:
            conditions.append(RequestLog.created_at >= self.since)
        if self.until is not None:
            conditions.append(RequestLog.created_at < self.until)
        return query.where(*conditions) if conditions else query


def row_to_dict(row: RequestLog) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS}


class RequestLogQuery:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(
        self, filters: LogFilter, *, limit: int, before_id: str | None
    ) -> list[RequestLog]:
        query = filters.apply(select(RequestLog)).order_by(RequestLog.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(RequestLog.id < before_id)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def get(self, request_id: str) -> RequestLog | None:
        """The row with this request id (unique: a reused one is `<id>~<row id>`), or row id."""
        query = select(RequestLog).where(RequestLog.request_id == request_id)
        async with self._sessions() as session:
            row = await session.scalar(query)
            if row is None:
                row = await session.get(RequestLog, request_id)
        return row
