"""Which cgroup directories corral created for a container: all that destroy may remove.

Revision ID: 0003_created_cgroups
Revises: 0002_exec_facts
Create Date: 2026-12-01

A record made before this revision has NULL here, which corral reads as "the
container's own directories" (what it removed before it recorded them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_created_cgroups"
down_revision = "0002_exec_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.add_column(sa.Column("created_cgroups", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.drop_column("created_cgroups")
