"""Admin API authentication: one bearer token, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.core import CorePlugin
from gateway.errors import AdminUnauthorized

__all__ = ["require_admin"]


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = connection.app.plugins.get(CorePlugin).settings.admin.token
    if not expected:
        raise AdminUnauthorized(
            "The admin API is disabled: start the gateway with SLUICE_ADMIN_TOKEN set."
        )
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise AdminUnauthorized(
            "Missing or wrong admin token: send 'Authorization: Bearer $SLUICE_ADMIN_TOKEN'."
        )
