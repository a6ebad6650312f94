"""The one-shot path of `start`, `kill`, `pause` and `resume`: no SQLAlchemy, no Alembic, no recovery scan.

containerd runs one runtime process per call. When the store is at the schema
this code knows, nothing is left to recover (the host has not restarted since
the last full recovery, no intent is interrupted: two indexed reads) and the
container's record needs nothing recorded first, the event fires through the
lean store and the lifecycle table (corral/statemachine/quick.py). Otherwise
`try_fire` answers False having done nothing, and the command takes the
library's path, whose Runtime finishes what is left before it fires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from corral.cli.context import Context, boot_id
from corral.errors import ContainerNotFound

if TYPE_CHECKING:  # pragma: no cover
    from corral.statemachine.locks import Locks
    from corral.store.lean import LeanStore
    from corral.store.readonly import ReadonlyStore

T = TypeVar("T")


def _locks(ctx: Context) -> Locks:
    from corral.statemachine.locks import Locks

    return Locks(ctx.root)


def _unheld(locks: Locks, container_id: str) -> bool:
    with locks.hold(container_id, blocking=False) as got:
        return got


def recovery_reason(ctx: Context, store: ReadonlyStore, current: str | None = None) -> str | None:
    """Why the library must open the store first, or None: two indexed reads (store/readonly.py)."""
    if current is None:
        try:
            current = boot_id()
        except OSError as exc:
            return f"the boot id cannot be read ({exc})"
    held: list[Locks] = []

    def unheld(cid: str) -> bool:  # the locks (pathlib, hashlib) only when an intent is pending
        if not held:
            held.append(_locks(ctx))
        return _unheld(held[0], cid)

    reason = store.recovery_needed(current, unheld)
    if reason is not None:
        ctx.log.debug(f"the library's path: {reason}")
    return reason


def clear_boot(ctx: Context, store: ReadonlyStore) -> str | None:
    """This boot's id when the lean path may act on `store` (nothing left to recover), else None."""
    try:
        current = boot_id()
    except OSError:
        return None
    return None if recovery_reason(ctx, store, current) is not None else current


def on_lean_path(ctx: Context, what: str, store: LeanStore | None, work: Callable[[Any, str], T]) -> T | None:
    """`work(store, boot_id)` on the lean path, or None when only the library may act (nothing written).

    The one shape of try_fire, try_create and try_delete: no store the lean code may open, something
    left to recover, or NeedsLibrary from the work all hand the call to the library; a missing
    container is ctx.not_found(), as the library's path says it.
    """
    from corral.statemachine.quick import NeedsLibrary

    if store is None:
        return None
    from corral.cli import early

    store.leave_wal = early.exits_now()  # the WAL is checkpointed by a later commit, not by this exit
    with store:
        current = clear_boot(ctx, store)
        if current is None:
            return None
        try:
            result = work(store, current)
        except NeedsLibrary as exc:
            ctx.log.debug(f"{what}: the library's path: {exc}")
            return None
        except ContainerNotFound:
            raise ctx.not_found() from None
    ctx.log.debug(f"{what} {ctx.container_id}: done on the lean path")
    return result


def try_fire(ctx: Context, event: str, **kwargs: Any) -> bool:
    """Fire `event` on `ctx.container_id` the cheap way; False when only the library may (nothing done)."""
    from corral.statemachine.quick import fire  # not for `state` and `ps`, which import this module
    from corral.store.lean import open_lean

    def work(store: Any, current: str) -> bool:
        fire(store, _locks(ctx), current, ctx.container_id, event, **kwargs)
        return True

    return on_lean_path(ctx, event, open_lean(ctx.root), work) is not None
