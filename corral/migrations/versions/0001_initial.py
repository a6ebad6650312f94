"""The initial schema: containers, their cgroup and namespace paths, exec'd processes, the journal.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("key", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("live_id", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pending_event", sa.String(16), nullable=True),
        sa.Column("pending_since", sa.DateTime(), nullable=True),
        sa.Column("init_pid", sa.Integer(), nullable=True),
        sa.Column("init_start_time", sa.Integer(), nullable=True),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("exit_signal", sa.Integer(), nullable=True),
        sa.Column("bundle", sa.Text(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("run_dir", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_containers")),
        sa.UniqueConstraint("live_id", name=op.f("uq_containers_live_id")),
    )
    op.create_index(op.f("ix_containers_id"), "containers", ["id"])
    op.create_table(
        "cgroup_paths",
        sa.Column("container_key", sa.Integer(), nullable=False),
        sa.Column("hierarchy", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_key"],
            ["containers.key"],
            name=op.f("fk_cgroup_paths_container_key_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("container_key", "hierarchy", name=op.f("pk_cgroup_paths")),
    )
    op.create_table(
        "namespace_paths",
        sa.Column("container_key", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("inode", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["container_key"],
            ["containers.key"],
            name=op.f("fk_namespace_paths_container_key_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("container_key", "type", name=op.f("pk_namespace_paths")),
    )
    op.create_table(
        "processes",
        sa.Column("key", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("container_key", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Integer(), nullable=False),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("exit_signal", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["container_key"],
            ["containers.key"],
            name=op.f("fk_processes_container_key_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processes")),
    )
    op.create_index(op.f("ix_processes_container_key"), "processes", ["container_key"])
    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("container_key", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["container_key"],
            ["containers.key"],
            name=op.f("fk_journal_container_key_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_journal")),
    )
    op.create_index(op.f("ix_journal_container_key"), "journal", ["container_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_journal_container_key"), table_name="journal")
    op.drop_table("journal")
    op.drop_index(op.f("ix_processes_container_key"), table_name="processes")
    op.drop_table("processes")
    op.drop_table("namespace_paths")
    op.drop_table("cgroup_paths")
    op.drop_index(op.f("ix_containers_id"), table_name="containers")
    op.drop_table("containers")
