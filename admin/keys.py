"""Admin: gateway keys. The secret is in the answer to POST and nowhere else, ever."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.errors import NotFound
from gateway.input_bounds import check_identifier
from gateway.keys.service import KeyInfo
from gateway.runtime import Core

__all__ = ["KeyController"]


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class KeyView(msgspec.Struct):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedKeyView(KeyView):
    key: str


def _view(info: KeyInfo) -> KeyView:
    return KeyView(info.id, info.name, info.prefix, info.created_at, info.revoked_at)


class KeyController(Controller):
    path = "/admin/keys"
    tags = ["admin: keys"]
    guards = [require_admin]

    @post("/", summary="Create a gateway key (the secret is shown once)")
    async def create(self, data: JSONBody[CreateKey], core: NamedDependency[Core]) -> IssuedKeyView:
        issued = await core.keys.create(check_identifier("name", data.name))
        info = issued.info
        return IssuedKeyView(
            info.id, info.name, info.prefix, info.created_at, info.revoked_at, key=issued.secret
        )

    @get("/", summary="List gateway keys (never their secrets)")
    async def list_keys(
        self,
        core: NamedDependency[Core],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[KeyView]:
        size = page_limit(limit)
        rows = await core.keys.list(limit=size + 1, after=decode_cursor(cursor))
        return make_page([_view(row) for row in rows], size)

    @get("/{key_id:str}", summary="One gateway key")
    async def get_key(self, key_id: FromPath[str], core: NamedDependency[Core]) -> KeyView:
        info = await core.keys.get(key_id)
        if info is None:
            raise NotFound(f"No key with id '{key_id}'.", param="key_id")
        return _view(info)

    @delete("/{key_id:str}", status_code=200, summary="Revoke a key (within one second)")
    async def revoke(self, key_id: FromPath[str], core: NamedDependency[Core]) -> KeyView:
        return _view(await core.keys.revoke(key_id))
