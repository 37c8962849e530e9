"""Every table, imported here so `Base.metadata` is complete for Alembic."""

from gateway.db.models.ab_test import AbTest
from gateway.db.models.alert import Alert
from gateway.db.models.api_key import ApiKey
from gateway.db.models.budget import Budget
from gateway.db.models.budget_alert import BudgetAlert
from gateway.db.models.evaluation import Evaluation
from gateway.db.models.evaluator_config import EvaluatorConfig
from gateway.db.models.pricing import PricingOverride
from gateway.db.models.prompt import Prompt
from gateway.db.models.prompt_label import PromptLabel
from gateway.db.models.prompt_version import PromptVersion
from gateway.db.models.request_log import RequestLog
from gateway.db.models.request_log_dead_letter import RequestLogDeadLetter
from gateway.db.models.request_log_rollup import (
    EvaluationModelHourly,
    EvaluationPromptDaily,
    RequestLogDaily,
    RequestLogId,
)
from gateway.db.models.schedule import Schedule
from gateway.db.models.test_case import TestCase
from gateway.db.models.test_result import TestResult
from gateway.db.models.test_run import TestRun

__all__ = [
    "AbTest",
    "Alert",
    "ApiKey",
    "Budget",
    "BudgetAlert",
    "Evaluation",
    "EvaluationModelHourly",
    "EvaluationPromptDaily",
    "EvaluatorConfig",
    "PricingOverride",
    "Prompt",
    "PromptLabel",
    "PromptVersion",
    "RequestLog",
    "RequestLogDaily",
    "RequestLogDeadLetter",
    "RequestLogId",
    "Schedule",
    "TestCase",
    "TestResult",
    "TestRun",
]
