"""The host-side network interfaces create makes for a container, recorded before they exist.

Revision ID: 0004_network_interfaces
Revises: 0003_created_cgroups
Create Date: 2026-12-01

A record made before this revision has none (corral had no network code).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_network_interfaces"
down_revision = "0003_created_cgroups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_interfaces",
        sa.Column("container_key", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("host_name", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_key"],
            ["containers.key"],
            name=op.f("fk_network_interfaces_container_key_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("container_key", "position", name=op.f("pk_network_interfaces")),
    )


def downgrade() -> None:
    op.drop_table("network_interfaces")
