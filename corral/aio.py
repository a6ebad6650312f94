"""corral for asyncio: the same Runtime, driven from an event loop without ever blocking it.

Every call that does kernel or store work (create, start, pause, resume,
exec, signal, destroy, load, list, recover) runs in a thread pool owned by the
`AsyncRuntime`; the loop only awaits it. The waits do not occupy a thread:

- `AsyncContainer.wait()` watches a pidfd with `loop.add_reader` (a pidfd is
  readable once its process has exited): the monitor's, which ends after it
  has written and journalled the init's status, else the init's; then it reads
  the status in the pool. With an executor that offers no descriptor (the
  test fake) a pool thread waits instead.
- `AsyncRuntime.events()` watches the store's bell (the inotify descriptor of
  statemachine/events_stream.py) with `loop.add_reader` and queries the journal
  in the pool when it rings.

The one exception: `AsyncExecProcess.wait()` (a process exec'd into a
container) waits in a pool thread, since its status arrives over its monitor's
socket.

    async with await AsyncRuntime.open("/var/lib/corral") as runtime:
        box = await runtime.create("web", config)
        await box.start()
        print(await box.wait())
        await box.destroy()
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import signal as signal_module
import threading
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corral.config import Config, Process
from corral.errors import WaitTimeout
from corral.executor.interface import Executor, Stdio
from corral.statemachine.container import Container
from corral.statemachine.events_stream import Event, EventStream
from corral.statemachine.lifecycle import State, state_info
from corral.statemachine.process import ExecProcess
from corral.statemachine.recovery import RecoveryReport
from corral.statemachine.runtime import DEFAULT_BOOT_ID_FILE, DEFAULT_ROOT, DEFAULT_RUN_ROOT, Runtime
from corral.statemachine.step import facts_of

T = TypeVar("T")

__all__ = ["AsyncContainer", "AsyncEventStream", "AsyncExecProcess", "AsyncRuntime"]


async def _readable(fd: int) -> None:
    """Until `fd` is readable, watched by the running loop (no thread)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _start_every_thread(pool: ThreadPoolExecutor, workers: int) -> None:
    """Start the pool's threads now, while nothing else runs.

    A pool starts a thread per submit until it has `max_workers`, and
    `Thread.start` waits until the new thread has run. Under a burst of calls
    (50 creates at once) the threads already started hold the GIL, so each
    start in the loop's thread waited up to a switch interval or more: the loop
    stalled 70-160 ms at its first tick. Here each thread blocks on a barrier
    until all have started, so that the pool has to start every one of them.
    """
    barrier = threading.Barrier(workers + 1, timeout=30)
    for _ in range(workers):
        pool.submit(barrier.wait)
    barrier.wait()


class AsyncRuntime:
    """A Runtime for asyncio: its methods are coroutines that never block the loop.

    Wrap a Runtime (`AsyncRuntime(runtime)`) or open one off-loop with
    `await AsyncRuntime.open(root, ...)` (opening runs recovery). `max_workers`
    bounds the threads doing kernel work at once (default: the standard
    library's, min(32, CPUs + 4)).
    """

    def __init__(self, runtime: Runtime, *, max_workers: int | None = None) -> None:
        self.sync = runtime
        workers = max_workers if max_workers is not None else min(32, (os.cpu_count() or 1) + 4)  # the pool's default
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="corral-aio")
        _start_every_thread(self._pool, workers)

    @classmethod
    async def open(
        cls,
        root: str | Path = DEFAULT_ROOT,
        executor: Executor | None = None,
        *,
        run_root: str | Path = DEFAULT_RUN_ROOT,
        boot_id_file: str | Path = DEFAULT_BOOT_ID_FILE,
        max_workers: int | None = None,
    ) -> AsyncRuntime:
        """Open a Runtime on `root` in a thread (its recovery may take a while) and wrap it."""
        loop = asyncio.get_running_loop()
        build = functools.partial(Runtime, root, executor, run_root=run_root, boot_id_file=boot_id_file)
        return cls(await loop.run_in_executor(None, build), max_workers=max_workers)

    async def __aenter__(self) -> AsyncRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `function(*args, **kwargs)` in this runtime's pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    def _wrap(self, container: Container) -> AsyncContainer:
        return AsyncContainer(self, container)

    async def create(self, container_id: str, config: Config, *, stdio: Stdio | None = None) -> AsyncContainer:
        """`Runtime.create` off the loop: the init waits in its namespaces for `start()`."""
        return self._wrap(await self.call(self.sync.create, container_id, config, stdio=stdio))

    async def load(self, container_id: str) -> AsyncContainer:
        return self._wrap(await self.call(self.sync.load, container_id))

    async def list(self, *, include_destroyed: bool = False) -> builtins.list[AsyncContainer]:
        boxes = await self.call(self.sync.list, include_destroyed=include_destroyed)
        return [self._wrap(box) for box in boxes]

    async def recover(self) -> RecoveryReport:
        return await self.call(self.sync.recover)

    def events(
        self,
        since: int | None = None,
        *,
        ids: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
    ) -> AsyncEventStream:
        """`async for event in runtime.events(...)`: as `Runtime.events()`, woken by the loop.

        The stream opens on `async with` entry or at the first iteration: with
        `since=None` it hands out what is committed from then on.
        """
        return AsyncEventStream(self, since, ids=ids, kinds=kinds)

    async def close(self, *, keep_runtime: bool = False) -> None:
        """Close the pool and, unless `keep_runtime`, the Runtime (containers keep running)."""
        if not keep_runtime:
            await self.call(self.sync.close)
        self._pool.shutdown(wait=False)


class AsyncContainer:
    """A Container driven from asyncio; `sync` is the Container itself (for its quick reads)."""

    def __init__(self, runtime: AsyncRuntime, container: Container) -> None:
        self._runtime = runtime
        self.sync = container
        self.id = container.id

    def __repr__(self) -> str:
        return f"<AsyncContainer {self.id!r}>"

    async def state(self) -> State:
        """The state, checked with the kernel (as `Container.state`)."""
        return await self._runtime.call(self.sync.refresh)

    async def start(self) -> None:
        await self._runtime.call(self.sync.start)

    async def pause(self) -> None:
        await self._runtime.call(self.sync.pause)

    async def resume(self) -> None:
        await self._runtime.call(self.sync.resume)

    async def signal(self, sig: int = signal_module.SIGTERM, *, all_processes: bool = False) -> None:
        await self._runtime.call(self.sync.signal, sig, all_processes=all_processes)

    async def exec(
        self, process: Process, *, stdio: Stdio | None = None, ignore_paused: bool = False
    ) -> AsyncExecProcess:
        """As `Container.exec`; `ignore_paused` lets it into a paused container (it runs once resumed)."""
        made = await self._runtime.call(self.sync.exec, process, stdio=stdio, ignore_paused=ignore_paused)
        return AsyncExecProcess(self._runtime, made)

    async def destroy(self, force: bool = False) -> None:
        await self._runtime.call(self.sync.destroy, force)

    def _exit_fd(self) -> int | None:
        """A pidfd readable once the init's status is written, or None (nothing to watch)."""
        record = self.sync.record
        if not state_info(State(record.state)).init_alive:
            return None
        exit_fd = getattr(self._runtime.sync.context.executor, "exit_fd", None)
        if exit_fd is None:
            return None
        fd: int | None = exit_fd(facts_of(record, self.sync.config))
        return fd

    async def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit (as `Container.wait`), on a pidfd the loop watches.

        Raises WaitTimeout after `timeout` seconds (the container keeps running).
        """
        fd = await self._runtime.call(self._exit_fd)
        if fd is None:
            if getattr(self._runtime.sync.context.executor, "exit_fd", None) is None:
                return await self._runtime.call(self.sync.wait, timeout)  # no descriptor: a thread waits
            return await self._runtime.call(self.sync.wait, None)  # already stopped (or still creating)
        try:
            await asyncio.wait_for(_readable(fd), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout(f"container {self.id!r}", timeout or 0) from None
        finally:
            os.close(fd)
        return await self._runtime.call(self.sync.wait, None)


class AsyncExecProcess:
    """A process exec'd into a container; `wait()` runs in the pool (see the module docstring)."""

    def __init__(self, runtime: AsyncRuntime, process: ExecProcess) -> None:
        self._runtime = runtime
        self.sync = process
        self.pid = process.pid

    async def wait(self, timeout: float | None = None) -> int | None:
        return await self._runtime.call(self.sync.wait, timeout)


class AsyncEventStream:
    """The journal as an async iterator: `async for event in stream`; `close()` (or `async with`) ends it."""

    def __init__(
        self,
        runtime: AsyncRuntime,
        since: int | None,
        *,
        ids: Collection[str] | None,
        kinds: Collection[str] | None,
    ) -> None:
        self._runtime = runtime
        self._open = functools.partial(EventStream, runtime.sync.context.store, since, ids=ids, kinds=kinds)
        self._stream: EventStream | None = None
        self._buffer: deque[Event] = deque()
        self._closed = False
        self._last: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        #: An iteration is in a thread (opening or fetching): close() must not close the stream under it.
        self._busy = False

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                self._release()
                raise StopAsyncIteration
            self._busy = True  # close() meanwhile leaves the stream to this iteration
            try:
                if self._stream is None:
                    await self._start()
                assert self._stream is not None
                events = await self._runtime.call(self._stream.fetch)
            finally:
                self._busy = False
            if events:
                self._buffer.extend(events)
                break
            if self._closed:  # closed while the fetch ran in a thread: nothing would ring for us
                continue
            await self._rung(self._stream.fileno())
        event = self._buffer.popleft()
        self._last = event.seq
        return event

    async def _rung(self, fd: int) -> None:
        """Until the bell rings or `close()` is called (the loop watches the descriptor)."""
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        waiter = self._waiter

        def on_ready() -> None:
            if not waiter.done():
                waiter.set_result(None)

        loop.add_reader(fd, on_ready)
        try:
            await waiter
        finally:
            loop.remove_reader(fd)
            self._waiter = None

    @property
    def position(self) -> int | None:
        """The sequence number of the last event handed out (resume with it as `since`).

        Before the first event: where the stream started; None before it opened.
        """
        return self._last

    async def _start(self) -> None:
        self._stream = await self._runtime.call(self._open)
        self._last = self._stream.position

    async def __aenter__(self) -> AsyncEventStream:
        """Open the stream now: with `since=None`, what is committed from here on is seen."""
        if self._stream is None:
            await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the stream (from the loop's thread); an iteration waiting for an event ends."""
        self._closed = True
        if self._waiter is not None:  # that iteration releases the watch once it is off the loop
            if not self._waiter.done():
                self._waiter.set_result(None)
            return
        if self._busy:  # the iteration sees `_closed` when its thread returns, and releases
            return
        self._release()

    def _release(self) -> None:
        if self._stream is not None:
            self._stream.close()
