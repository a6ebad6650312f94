"""What an open must find cheaply: interrupted intents (a partial index) and the boot last recovered.

Revision ID: 0006_indexes
Revises: 0003_created_cgroups
Create Date: 2026-12-01

Opening a store used to run the full recovery over every live record. Now it
finishes only interrupted intents, found through `ix_containers_pending`
(a partial index: only rows with an intent are in it), and runs the full
recovery only when the host's boot id differs from the one `recovered_boot`
holds (one primary-key read). An empty `recovered_boot` (a store upgraded
from an older revision) counts as another boot: the first open recovers fully.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_indexes"
down_revision = "0005_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recovered_boot",
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("recovered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_recovered_boot")),
    )
    op.create_index(
        "ix_containers_pending",
        "containers",
        ["pending_event"],
        unique=False,
        sqlite_where=sa.text("pending_event IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_containers_pending", table_name="containers")
    op.drop_table("recovered_boot")
