"""Alembic environment: runs on a connection handed over by gateway.db.migrate, or its own."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from gateway.db.base import Base, UTCDateTime
from gateway.db.engine import create_engine
from gateway.db.models import ApiKey, RequestLog  # noqa: F401  (fills Base.metadata)

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Revisions must not import application types: render ours as plain SQLAlchemy ones.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.begin() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


given = config.attributes.get("connection")
if given is not None:
    _configure(given)
else:
    asyncio.run(_run_with_own_engine())
