"""`sluice migrate [REVISION]`: apply the database migrations (Alembic) up to REVISION."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.command import configure_logging, server_settings

__all__ = ["register"]


def register(commands: Any) -> None:
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(run=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.db.engine import create_engine
    from gateway.db.migrate import migration_state, upgrade

    settings = server_settings()
    configure_logging()

    async def run() -> None:
        engine = create_engine(settings.database.url)
        try:
            await upgrade(engine, args.revision)
            state = await migration_state(engine)
            print(f"database at revision {state.current} (head {state.head})")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0
