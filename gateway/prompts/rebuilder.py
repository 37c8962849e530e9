"""The full request a logged call sent upstream, rebuilt from its version and variables.

The request log keeps the client's request, the version id and the variables, never the
rendered prompt text; the admin response view puts them back together with this.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import Prompt, PromptVersion
from gateway.errors import SluiceError
from gateway.prompts.compiled import CompiledVersion

__all__ = ["RequestRebuilder"]


class RequestRebuilder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def rebuild(
        self, version_id: str, variables: dict[str, Any] | None, request_body: Any
    ) -> dict[str, Any] | None:
        """The request as the gateway built it (before model routing), or None when the
        version is gone or the variables no longer render (they did at request time)."""
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(PromptVersion, Prompt.slug)
                    .join(Prompt, Prompt.id == PromptVersion.prompt_id)
                    .where(PromptVersion.id == version_id)
                )
            ).first()
        if found is None:
            return None
        row, slug = found
        version = CompiledVersion.from_row(row, slug)
        try:
            rendered = version.render(variables or {})
        except SluiceError:
            return None
        # Same rule as the proxy: version messages first, then the client's; the version's
        # model and params win.
        body: dict[str, Any] = dict(request_body) if isinstance(request_body, dict) else {}
        body["messages"] = rendered + list(body.get("messages") or [])
        if version.model:
            body["model"] = version.model
        body.update(version.params)
        return body
