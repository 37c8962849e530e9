"""Every table, imported here so `Base.metadata` is complete for Alembic."""

from gateway.db.models.ab_test import AbTest
from gateway.db.models.api_key import ApiKey
from gateway.db.models.prompt import Prompt
from gateway.db.models.prompt_label import PromptLabel
from gateway.db.models.prompt_version import PromptVersion
from gateway.db.models.request_log import RequestLog

__all__ = ["AbTest", "ApiKey", "Prompt", "PromptLabel", "PromptVersion", "RequestLog"]
