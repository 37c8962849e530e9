"""evaluator configs and evaluations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:42:33.312620
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # test_case_id has no foreign key yet: the test_cases table comes with the test-suite issue.
    op.create_table(
        "evaluator_configs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prompt_version_id", sa.String(length=32), nullable=True),
        sa.Column("test_case_id", sa.String(length=32), nullable=True),
        sa.Column("evaluator_key", sa.String(length=64), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("run_mode", sa.String(length=16), nullable=False),
        sa.Column("sampling_rate", sa.Float(), nullable=False),
        sa.Column(
            "depends_on",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(prompt_version_id IS NULL) <> (test_case_id IS NULL)",
            name=op.f("ck_evaluator_configs_one_owner"),
        ),
        sa.ForeignKeyConstraint(
            ["prompt_version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_evaluator_configs_prompt_version_id_prompt_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluator_configs")),
    )
    with op.batch_alter_table("evaluator_configs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluator_configs_prompt_version_id"),
            ["prompt_version_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_evaluator_configs_test_case_id"), ["test_case_id"], unique=False
        )

    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("request_log_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("evaluator_config_id", sa.String(length=32), nullable=True),
        sa.Column("context", sa.String(length=16), nullable=False),
        sa.Column("test_run_id", sa.String(length=32), nullable=True),
        sa.Column("prompt_slug", sa.String(length=100), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("prompt_version_id", sa.String(length=32), nullable=True),
        sa.Column("ab_test_id", sa.String(length=32), nullable=True),
        sa.Column("ab_variant", sa.String(length=100), nullable=True),
        sa.Column("evaluator_key", sa.String(length=64), nullable=False),
        sa.Column("evaluator_version", sa.String(length=32), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluator_config_id"],
            ["evaluator_configs.id"],
            name=op.f("fk_evaluations_evaluator_config_id_evaluator_configs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_log_id"],
            ["request_logs.id"],
            name=op.f("fk_evaluations_request_log_id_request_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint(
            "request_log_id",
            "evaluator_config_id",
            name=op.f("uq_evaluations_request_log_id_evaluator_config_id"),
        ),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index("ix_evaluations_config", ["evaluator_config_id"], unique=False)
        batch_op.create_index(
            "ix_evaluations_key_created", ["evaluator_key", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_evaluations_prompt_created",
            ["prompt_slug", "prompt_version", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_evaluations_request_id"), ["request_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_evaluations_test_run_id"), ["test_run_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_test_run_id"))
        batch_op.drop_index(batch_op.f("ix_evaluations_request_id"))
        batch_op.drop_index("ix_evaluations_prompt_created")
        batch_op.drop_index("ix_evaluations_key_created")
        batch_op.drop_index("ix_evaluations_config")

    op.drop_table("evaluations")
    with op.batch_alter_table("evaluator_configs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluator_configs_test_case_id"))
        batch_op.drop_index(batch_op.f("ix_evaluator_configs_prompt_version_id"))

    op.drop_table("evaluator_configs")
