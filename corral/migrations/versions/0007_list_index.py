"""What `Runtime.list()` asks: the keys and ids of the records not destroyed, from an index alone.

Revision ID: 0007_list_index
Revises: 0006_indexes
Create Date: 2026-12-01

`list()` hands out Containers that read their record on first use, so it asks
only (key, id) of the rows not destroyed, in key order, maybe filtered by
state. Without an index SQLite scans the table, ~3 KB per row (the config
JSON and the cgroups create made): ~11 ms at 10,000 records. This partial index
holds only live rows, ordered by key and covering id and state: ~3 ms for
10,000 rows, and well under 1 ms when `states=` asks for the few live ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_list_index"
down_revision = "0006_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_containers_live",
        "containers",
        ["key", "id", "state"],
        unique=False,
        sqlite_where=sa.text("live_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_containers_live", table_name="containers")
