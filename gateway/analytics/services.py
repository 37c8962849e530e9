"""The analytics services of one process, as the admin routes find them."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.analytics.alerts import AlertFeed
from gateway.analytics.models import ModelAnalytics
from gateway.analytics.prompts import PromptAnalytics

__all__ = ["AnalyticsServices"]


@dataclass(frozen=True, slots=True)
class AnalyticsServices:
    prompts: PromptAnalytics
    models: ModelAnalytics
    alerts: AlertFeed
