"""Facts the real executor records: the monitor process that reaps init, and OOM kills.

Revision ID: 0002_exec_facts
Revises: 0001_initial
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_exec_facts"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.add_column(sa.Column("monitor_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("monitor_start_time", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("oom_killed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.drop_column("oom_killed")
        batch.drop_column("monitor_start_time")
        batch.drop_column("monitor_pid")
