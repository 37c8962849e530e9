"""budgets, soft-limit alerts and pricing overrides

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 14:41:13.124570
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=300), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("limit_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("soft_limit_pct", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint(
            "scope", "scope_value", "period", name=op.f("uq_budgets_scope_scope_value_period")
        ),
    )
    op.create_table(
        "pricing_overrides",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("cached_input", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("output", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("max_output_tokens", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_pricing_overrides")),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("budget_id", sa.String(length=32), nullable=False),
        sa.Column("window_key", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("soft_limit_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("limit_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_alerts_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_alerts")),
        sa.UniqueConstraint(
            "budget_id", "window_key", name=op.f("uq_budget_alerts_budget_id_window_key")
        ),
    )
    op.create_index(op.f("ix_budget_alerts_fired_at"), "budget_alerts", ["fired_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_budget_alerts_fired_at"), table_name="budget_alerts")
    op.drop_table("budget_alerts")
    op.drop_table("pricing_overrides")
    op.drop_table("budgets")
