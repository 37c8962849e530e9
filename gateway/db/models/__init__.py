"""Every table, imported here so `Base.metadata` is complete for Alembic."""

from gateway.db.models.api_key import ApiKey
from gateway.db.models.request_log import RequestLog

__all__ = ["ApiKey", "RequestLog"]
