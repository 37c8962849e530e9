"""request log dead letters; one row per request id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows written before ids were unique may share one: every row but the oldest (lowest id) gets
# the writer's own form for a reused id, `<id, cut>~<row id>`, which no caller can send ('~' is
# not allowed in X-Sluice-Request-Id) and which fits the 128-character column.
_DEDUPLICATE = sa.text(
    "UPDATE request_logs SET request_id = "
    "substr(request_id, 1, 127 - length(id)) || '~' || id "
    "WHERE EXISTS (SELECT 1 FROM request_logs AS older "
    "WHERE older.request_id = request_logs.request_id AND older.id < request_logs.id)"
)


def upgrade() -> None:
    op.create_table(
        "request_log_dead_letters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("row_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_log_dead_letters")),
    )
    with op.batch_alter_table("request_log_dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_log_dead_letters_created_at"), ["created_at"], unique=False
        )

    op.execute(_DEDUPLICATE)
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_logs_request_id"))
        batch_op.create_index(batch_op.f("ix_request_logs_request_id"), ["request_id"], unique=True)


def downgrade() -> None:
    # The renamed duplicates keep their unique form: nothing tells which were renamed.
    with op.batch_alter_table("request_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_logs_request_id"))
        batch_op.create_index(
            batch_op.f("ix_request_logs_request_id"), ["request_id"], unique=False
        )
    with op.batch_alter_table("request_log_dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_log_dead_letters_created_at"))
    op.drop_table("request_log_dead_letters")
