"""The one-shot path of `create` and `delete`: no SQLAlchemy, no Alembic, no `transitions`, no pyroute2.

As fast.py's `try_fire` for start, kill, pause and resume: when the store is
at the schema this code knows and nothing is left to recover (two indexed
reads), `create` and `delete` run through the lean store's fsynced commits
(store/lean_durable.py), the lifecycle table and the LinuxExecutor
(statemachine/quick_create.py, quick_destroy.py). Otherwise, and for whatever
only the library does (hooks, a network section, an init that died unobserved,
a pending intent), they answer None or False having written nothing, and the
command takes the library's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.cli.context import Context
from corral.cli.fast import _locks, on_lean_path

if TYPE_CHECKING:  # pragma: no cover
    from corral.config import Config
    from corral.executor.launch import Started
    from corral.executor.linux import LinuxExecutor
    from corral.statemachine.quick_create import Created
    from corral.types import Stdio


class EarlyHelper:
    """The spawn helper, started before the command imports the config and the executor.

    Its start (a new interpreter importing what a monitor and an init need) is
    the longest wait of a one-shot create; started first, it runs on another core
    while the command parses the bundle, plans and writes the record. The lean
    path adopts it; otherwise `close` ends it (it exits when its socket closes).
    """

    def __init__(self, started: Started | None = None) -> None:
        if started is None:
            from corral.executor.launch import start_helper

            started = start_helper()
        self._started: Started | None = started

    @staticmethod
    def wanted(ctx: Context) -> bool:
        """Worth starting: a store is there, so the lean path may take the call."""
        import os

        return os.path.isfile(os.path.join(ctx.root, "corral.db"))

    @classmethod
    def for_create(cls, ctx: Context) -> EarlyHelper | None:
        """The helper the command line started before argparse (early.py), else a new one if wanted."""
        from corral.cli import early

        started = early.take()
        if started is not None:
            return cls(started)
        return cls() if cls.wanted(ctx) else None

    def give(self, executor: LinuxExecutor) -> None:
        if self._started is not None:
            executor.adopt_helper(*self._started)
            self._started = None

    def close(self) -> None:
        started, self._started = self._started, None
        if started is not None:
            from corral.cli.early import end

            end(started)


def _executor(ctx: Context, detached: bool) -> LinuxExecutor:
    """The executor ctx.runtime() would give the library (its `--parent` when detached)."""
    from corral.executor.linux import LinuxExecutor

    parent = getattr(ctx.args, "parent", None) or "monitor"
    return LinuxExecutor(parent=parent if detached else "monitor")


def try_create(
    ctx: Context, config: Config, stdio: Stdio, console: bool, *, detached: bool, helper: EarlyHelper | None = None
) -> Created | None:
    """Create `ctx.container_id` the cheap way; None when only the library may (nothing written).
    `helper`, started earlier, is adopted by the executor (the caller closes it if it was not)."""
    from corral.statemachine.quick import NeedsLibrary
    from corral.statemachine.quick_create import create, refuse
    from corral.store.lean_durable import open_durable

    try:
        refuse(config)
    except NeedsLibrary as exc:
        ctx.log.debug(f"create: the library's path: {exc}")
        return None

    def work(store: Any, current: str) -> Created:
        executor = _executor(ctx, detached)
        if helper is not None:
            helper.give(executor)
        try:
            return create(
                store, _locks(ctx), executor, current, ctx.run_root, ctx.container_id, config,
                stdio=stdio, console=console,
            )
        finally:
            executor.close()

    return on_lean_path(ctx, "create", open_durable(ctx.root), work)


def try_delete(ctx: Context, *, force: bool) -> bool:
    """`delete [--force]` the cheap way; False when only the library may (nothing written).

    Raises ContainerNotFound (ctx.not_found()) when no live container has the id,
    and CorralError for a running or paused one without `force`, as the library's path does.
    """
    from corral.statemachine.quick_destroy import delete
    from corral.store.lean_durable import open_durable

    def work(store: Any, current: str) -> bool:
        delete(store, None, _locks(ctx), current, ctx.container_id, force=force)  # None: the kernel directly
        return True

    return on_lean_path(ctx, "delete", open_durable(ctx.root), work) is not None
