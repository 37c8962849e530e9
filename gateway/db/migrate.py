"""Alembic, driven from code: apply revisions, and tell whether a database is behind."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from gateway.db.engine import create_engine
from gateway.settings import DatabaseSettings

__all__ = [
    "MigrationState",
    "alembic_config",
    "downgrade",
    "migration_state",
    "prepare_database",
    "upgrade",
]


def alembic_config(url: str) -> Config:
    """Alembic's config without an ini file, so an installed package can migrate itself."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s_%%(rev)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "upgrade", str(engine.url), revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "downgrade", str(engine.url), revision)


def _run(connection: Connection, action: str, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


class MigrationState:
    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


async def migration_state(engine: AsyncEngine) -> MigrationState:
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    assert head is not None
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    return MigrationState(current, head)


async def prepare_database(settings: DatabaseSettings) -> str | None:
    """Migrate when allowed (the embedded default); else the reason the database can't serve."""
    engine = create_engine(settings.url)
    try:
        state = await migration_state(engine)
        if state.up_to_date:
            return None
        if settings.migrate_on_start:
            await upgrade(engine)
            return None
        return (
            f"the database is at revision {state.current or '(empty)'} but this Sluice needs "
            f"{state.head}.\nrun: sluice migrate   (with the same SLUICE_DATABASE_URL)"
        )
    finally:
        await engine.dispose()
