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

from typing import TYPE_CHECKING

from corral.cli.context import Context, boot_id
from corral.cli.fast import _locks, recovery_reason
from corral.errors import ContainerNotFound

if TYPE_CHECKING:  # pragma: no cover
    from corral.config import Config
    from corral.executor.linux import LinuxExecutor
    from corral.statemachine.quick_create import Created
    from corral.types import Stdio


def _executor(ctx: Context, detached: bool) -> LinuxExecutor:
    """The executor ctx.runtime() would give the library (its `--parent` when detached)."""
    from corral.executor.linux import LinuxExecutor

    parent = getattr(ctx.args, "parent", None) or "monitor"
    return LinuxExecutor(parent=parent if detached else "monitor")


def try_create(ctx: Context, config: Config, stdio: Stdio, console: bool, *, detached: bool) -> Created | None:
    """Create `ctx.container_id` the cheap way; None when only the library may (nothing written)."""
    from corral.statemachine.quick import NeedsLibrary
    from corral.statemachine.quick_create import create, refuse
    from corral.store.lean_durable import open_durable

    try:
        refuse(config)
    except NeedsLibrary as exc:
        ctx.log.debug(f"create: the library's path: {exc}")
        return None
    store = open_durable(ctx.root)
    if store is None:
        return None
    with store:
        try:
            current = boot_id()
        except OSError:
            return None
        if recovery_reason(ctx, store, current) is not None:
            return None
        executor = _executor(ctx, detached)
        try:
            created = create(
                store, _locks(ctx), executor, current, ctx.run_root, ctx.container_id, config,
                stdio=stdio, console=console,
            )
        except NeedsLibrary as exc:
            ctx.log.debug(f"create: the library's path: {exc}")
            return None
        finally:
            executor.close()
    ctx.log.debug(f"create {ctx.container_id}: done on the lean path")
    return created


def try_delete(ctx: Context, *, force: bool) -> bool:
    """`delete [--force]` the cheap way; False when only the library may (nothing written).

    Raises ContainerNotFound (ctx.not_found()) when no live container has the id,
    and CorralError for a running or paused one without `force`, as the library's path does.
    """
    from corral.statemachine.quick import NeedsLibrary
    from corral.statemachine.quick_destroy import delete
    from corral.store.lean_durable import open_durable

    store = open_durable(ctx.root)
    if store is None:
        return False
    with store:
        try:
            current = boot_id()
        except OSError:
            return False
        if recovery_reason(ctx, store, current) is not None:
            return False
        executor = _executor(ctx, False)
        try:
            delete(store, executor, _locks(ctx), current, ctx.container_id, force=force)
        except NeedsLibrary as exc:
            ctx.log.debug(f"delete: the library's path: {exc}")
            return False
        except ContainerNotFound:
            raise ctx.not_found() from None
        finally:
            executor.close()
    ctx.log.debug(f"delete {ctx.container_id}: done on the lean path")
    return True
