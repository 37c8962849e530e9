"""request log: the upstream's id for its answer, so a stored response finds its upstream

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "request_logs", sa.Column("upstream_response_id", sa.String(length=200), nullable=True)
    )
    op.create_index(
        op.f("ix_request_logs_upstream_response_id"),
        "request_logs",
        ["upstream_response_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_request_logs_upstream_response_id"), table_name="request_logs")
    # Plain DROP COLUMN on both (SQLite >= 3.35): a batch copy of the table on SQLite would drop
    # and re-create request_logs under the rollup triggers of 0007, which refer to it.
    op.execute("ALTER TABLE request_logs DROP COLUMN upstream_response_id")
