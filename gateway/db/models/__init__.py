"""Every table, imported here so `Base.metadata` is complete for Alembic."""

from gateway.db.models.ab_test import AbTest
from gateway.db.models.api_key import ApiKey
from gateway.db.models.budget import Budget
from gateway.db.models.budget_alert import BudgetAlert
from gateway.db.models.pricing import PricingOverride
from gateway.db.models.prompt import Prompt
from gateway.db.models.prompt_label import PromptLabel
from gateway.db.models.prompt_version import PromptVersion
from gateway.db.models.request_log import RequestLog

__all__ = [
    "AbTest",
    "ApiKey",
    "Budget",
    "BudgetAlert",
    "PricingOverride",
    "Prompt",
    "PromptLabel",
    "PromptVersion",
    "RequestLog",
]
