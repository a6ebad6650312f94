"""The SQLAlchemy models: what corral writes down about every container.

Identity and everything recovery must query are columns; the config is JSON
(it is read whole, never searched). Every column is kept true by the repository:
none is written once and then left to go stale.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Named constraints, so that Alembic's batch migrations on SQLite can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ContainerRow(Base):
    """One container's incarnation. A destroyed one stays as a tombstone.

    `key` identifies an incarnation; `id` is the user's name for it. `live_id`
    equals `id` until the container is destroyed and is NULL after, so that a
    unique constraint allows one live container per id while tombstones of
    earlier incarnations keep their history.
    """

    __tablename__ = "containers"

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(128), index=True)
    live_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    pending_event: Mapped[str | None] = mapped_column(String(16))
    pending_since: Mapped[datetime | None] = mapped_column(DateTime)
    init_pid: Mapped[int | None] = mapped_column(Integer)
    init_start_time: Mapped[int | None] = mapped_column(Integer)
    boot_id: Mapped[str] = mapped_column(String(64))
    monitor_pid: Mapped[int | None] = mapped_column(Integer)
    monitor_start_time: Mapped[int | None] = mapped_column(Integer)
    exit_status: Mapped[int | None] = mapped_column(Integer)
    exit_signal: Mapped[int | None] = mapped_column(Integer)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    bundle: Mapped[str | None] = mapped_column(Text)
    config: Mapped[str] = mapped_column(Text)
    run_dir: Mapped[str] = mapped_column(Text)
    #: JSON {hierarchy key: [directories corral creates, parents first]}; NULL before 0003.
    created_cgroups: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    cgroups: Mapped[list[CgroupPathRow]] = relationship(
        back_populates="container", cascade="all, delete-orphan", lazy="selectin"
    )
    namespaces: Mapped[list[NamespacePathRow]] = relationship(
        back_populates="container", cascade="all, delete-orphan", lazy="selectin"
    )
    interfaces: Mapped[list[NetworkInterfaceRow]] = relationship(
        back_populates="container",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="NetworkInterfaceRow.position",
    )

    __mapper_args__ = {"version_id_col": version}

    __table_args__ = (
        # Opening a store finishes interrupted intents: found through this partial
        # index, the query costs O(intents), not O(records).
        Index("ix_containers_pending", "pending_event", sqlite_where=pending_event.is_not(None)),
        # `Runtime.list()` asks (key, id) of the live rows, maybe by state: answered
        # from this partial covering index, never the table's ~3 KB rows.
        Index("ix_containers_live", "key", "id", "state", sqlite_where=live_id.is_not(None)),
    )


class CgroupPathRow(Base):
    __tablename__ = "cgroup_paths"

    container_key: Mapped[int] = mapped_column(
        ForeignKey("containers.key", ondelete="CASCADE"), primary_key=True
    )
    hierarchy: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)

    container: Mapped[ContainerRow] = relationship(back_populates="cgroups")


class NamespacePathRow(Base):
    __tablename__ = "namespace_paths"

    container_key: Mapped[int] = mapped_column(
        ForeignKey("containers.key", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    inode: Mapped[int | None] = mapped_column(Integer)

    container: Mapped[ContainerRow] = relationship(back_populates="namespaces")


class NetworkInterfaceRow(Base):
    """A host-side interface create makes: written with the plan, before it exists (0004)."""

    __tablename__ = "network_interfaces"

    container_key: Mapped[int] = mapped_column(
        ForeignKey("containers.key", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_name: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(16))  # the container side's
    owner: Mapped[str] = mapped_column(Text)  # the alias that marks it as this container's

    container: Mapped[ContainerRow] = relationship(back_populates="interfaces")


class ProcessRow(Base):
    """A process exec'd into a container, and how it ended once someone waited for it."""

    __tablename__ = "processes"

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_key: Mapped[int] = mapped_column(
        ForeignKey("containers.key", ondelete="CASCADE"), index=True
    )
    pid: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[int] = mapped_column(Integer)
    boot_id: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # JSON list
    started_at: Mapped[datetime] = mapped_column(DateTime)
    exit_status: Mapped[int | None] = mapped_column(Integer)
    exit_signal: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class JournalRow(Base):
    """Append-only: one row per transition that happened (never per attempt)."""

    __tablename__ = "journal"
    #: A seq is never reused, even once the newest rows are deleted: Runtime.events() resumes by it.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    container_key: Mapped[int] = mapped_column(
        ForeignKey("containers.key", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON object


class BootRow(Base):
    """The boot a full recovery last ran in (one row, `slot` 1).

    Opening a store compares it with the host's boot id: one primary-key read
    tells a host restart (then the full recovery runs), so that an ordinary
    open never has to look at every live record.
    """

    __tablename__ = "recovered_boot"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    boot_id: Mapped[str] = mapped_column(String(64))
    recovered_at: Mapped[datetime] = mapped_column(DateTime)
