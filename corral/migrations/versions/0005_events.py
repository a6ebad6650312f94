"""Journal sequence numbers are never reused (AUTOINCREMENT): Runtime.events() resumes by them.

Revision ID: 0005_events
Revises: 0003_created_cgroups
Create Date: 2026-12-01

Without AUTOINCREMENT, SQLite gives a new row max(seq) + 1, so deleting the
newest rows (removing tombstones and their journal) would hand their numbers
to later events, and a controller resuming after one of those numbers would
never see them. The table is rebuilt (SQLite cannot change a primary key in
place); sqlite_sequence starts at the largest seq copied, so numbering goes on.
"""

from __future__ import annotations

from alembic import op

revision = "0005_events"
down_revision = "0004_network_interfaces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal", recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("seq", autoincrement=True)


def downgrade() -> None:
    with op.batch_alter_table("journal", recreate="always", table_kwargs={"sqlite_autoincrement": False}) as batch:
        batch.alter_column("seq", autoincrement=True)
