"""The public surface a newcomer finds from `import corral` alone.

Every error a caller can catch and every type a public method hands back must be
reachable as `corral.X` (and listed in `corral.__all__`), so no one has to
discover `corral.errors` or `corral.store.repository` through `dir()`.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator

import pytest

import corral
import corral.errors
from corral.statemachine.container import Container
from corral.statemachine.process import ExecProcess
from corral.statemachine.runtime import Runtime


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(corral.errors, inspect.isclass)
        if obj.__module__ == corral.errors.__name__ and issubclass(obj, BaseException)
    ]


def _corral_classes(annotation: object) -> Iterator[type]:
    """The corral-defined classes named anywhere in a (possibly generic) annotation."""
    if isinstance(annotation, type) and annotation.__module__.startswith("corral."):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _corral_classes(arg)


def _public_return_types(cls: type) -> dict[str, type]:
    found: dict[str, type] = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        func = member.fget if isinstance(member, property) else member
        if not callable(func):
            continue
        hints = typing.get_type_hints(func)
        for found_cls in _corral_classes(hints.get("return")):
            found[f"{cls.__name__}.{name}"] = found_cls
    return found


def test_there_are_errors_to_export() -> None:
    assert len(_error_classes()) >= 16


@pytest.mark.parametrize("error", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_is_exported(error: type[BaseException]) -> None:
    assert getattr(corral, error.__name__) is error
    assert error.__name__ in corral.__all__


def _return_types() -> list[tuple[str, type]]:
    found: dict[str, type] = {}
    for cls in (Runtime, Container, ExecProcess):
        found.update(_public_return_types(cls))
    return sorted(found.items())


def test_return_types_are_found() -> None:
    names = {cls.__name__ for _, cls in _return_types()}
    # the walk must see through Optional, list[...] and Iterator[...]
    assert {"Container", "ExecProcess", "JournalEntry", "RecoveryReport", "OOMEvent"} <= names


@pytest.mark.parametrize("where, cls", _return_types(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_return_type_is_exported(where: str, cls: type) -> None:
    assert getattr(corral, cls.__name__) is cls, where
    assert cls.__name__ in corral.__all__, where


def _parts(cls: type, seen: set[type]) -> None:
    """`cls` and every corral class its fields and properties hand on, recursively."""
    if cls in seen:
        return
    seen.add(cls)
    hints: dict[str, object] = {}
    if dataclasses.is_dataclass(cls):
        hints.update(typing.get_type_hints(cls))
    for name, member in inspect.getmembers(cls):
        if isinstance(member, property) and not name.startswith("_"):
            hints[name] = typing.get_type_hints(member.fget).get("return")
    for annotation in hints.values():
        for part in _corral_classes(annotation):
            _parts(part, seen)


def test_parts_of_returned_values_are_exported() -> None:
    """Types reached through a returned value's fields (Stats' parts, a report's orphans)."""
    seen: set[type] = set()
    for _, cls in _return_types():
        _parts(cls, seen)
    assert {"MemoryStats", "NamespaceRecord", "RecoveryAction", "Orphan"} <= {c.__name__ for c in seen}
    missing = sorted(c.__name__ for c in seen if getattr(corral, c.__name__, None) is not c)
    assert missing == []


def test_every_name_in_all_resolves() -> None:
    for name in corral.__all__:
        assert getattr(corral, name) is not None


def test_import_corral_stays_cheap() -> None:
    """The container's init imports corral.executor.*: the root must not pull the lifecycle in."""
    code = "import sys, corral; print(sorted(m for m in sys.modules if m.startswith(('corral.', 'sqlalchemy', 'transitions'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['corral.version']"


def test_py_typed_is_shipped() -> None:
    """PEP 561: without the marker, mypy treats `import corral` as untyped."""
    import tomllib
    from importlib.resources import files
    from pathlib import Path

    assert files("corral").joinpath("py.typed").is_file()
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["corral"]


# -- logging: through logging.getLogger("corral"), never print ---------------------------------


def test_the_library_never_prints() -> None:
    """A library that prints writes into its caller's stdout (a CLI's JSON, a daemon's log)."""
    import ast
    from pathlib import Path

    package = Path(corral.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if "cli" in path.relative_to(package).parts:
            continue  # the command line's job is to print
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


def _fake(runtime: Runtime) -> typing.Any:
    return runtime.context.executor


def test_each_transition_is_logged_at_debug(runtime: Runtime, config: corral.Config, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="corral"):
        box = runtime.create("logged", config)
        box.start()
    records = [r for r in caplog.records if r.name == "corral" and r.levelno == logging.DEBUG]
    messages = [r.getMessage() for r in records]
    assert any("logged" in m and "start" in m and "created -> running" in m for m in messages), messages
    assert any("logged" in m and "create" in m for m in messages), messages


def test_each_recovery_action_is_logged_at_info(
    runtime: Runtime, config: corral.Config, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    box = runtime.create("c", config)
    box.start()
    record = box.record
    # a controller froze the cgroup, then died before recording `paused`
    runtime.context.store.update(record.key, record.version, pending_event="pause")
    with _fake(runtime)._kernel("c") as k:
        k["frozen"] = True
    with caplog.at_level(logging.INFO, logger="corral"):
        report = runtime.recover()
    assert report.actions
    infos = [r.getMessage() for r in caplog.records if r.name == "corral" and r.levelno == logging.INFO]
    assert any("c" in m and "pause: now paused" in m for m in infos), infos


# -- convenience: stop(timeout), context managers ---------------------------------------------

SIGTERM_STATUS = 128 + 15
SIGKILL_STATUS = 128 + 9


def test_stop_ends_a_running_container_with_sigterm(runtime: Runtime, config: corral.Config) -> None:
    box = runtime.create("c", config)
    box.start()
    assert box.stop(timeout=5) == SIGTERM_STATUS
    assert box.state is corral.State.STOPPED
    assert [e.event for e in box.history()][-2:] == ["signal", "exited"]


def test_stop_kills_what_outlives_the_timeout(runtime: Runtime, config: corral.Config) -> None:
    box = runtime.create("c", config)
    box.start()
    box.pause()  # a frozen init cannot act on SIGTERM (nor can an init still waiting to start)
    assert box.stop(timeout=0.05) == SIGKILL_STATUS
    assert box.state is corral.State.STOPPED
    signals = [e.detail.get("signal") for e in box.history() if e.event == "signal"]
    assert len(signals) == 2, box.history()


def test_stop_leaves_a_stopped_container_alone(runtime: Runtime, config: corral.Config) -> None:
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).make_exit("c", 3)
    assert box.wait() == 3
    events = len(box.history())
    assert box.stop() == 3
    assert len(box.history()) == events


def test_a_container_block_destroys_it_with_force(runtime: Runtime, config: corral.Config) -> None:
    with runtime.create("c", config) as box:
        box.start()
    assert box.state is corral.State.DESTROYED
    assert not _fake(runtime).leaked("c")


def test_a_container_block_destroys_it_even_on_error(runtime: Runtime, config: corral.Config) -> None:
    with pytest.raises(RuntimeError):
        with runtime.create("c", config) as box:
            raise RuntimeError("the controller's own bug")
    assert box.state is corral.State.DESTROYED


def test_a_kept_container_outlives_its_block(runtime: Runtime, config: corral.Config) -> None:
    with runtime.create("c", config) as box:
        box.keep = True
        box.start()
    assert box.state is corral.State.RUNNING


def test_a_container_destroyed_inside_its_block_is_fine(runtime: Runtime, config: corral.Config) -> None:
    with runtime.create("c", config) as box:
        box.destroy(force=True)
    assert box.state is corral.State.DESTROYED


def test_a_runtime_block_closes_it(tmp_path: typing.Any, kernel_dir: typing.Any, boot_id_file: typing.Any) -> None:
    from tests.unit.conftest import make_runtime

    with make_runtime(tmp_path, kernel_dir, boot_id_file) as rt:
        assert isinstance(rt, Runtime)
        rt.list()


def test_type_checkers_see_every_export() -> None:
    """The lazy exports are invisible to mypy and IDEs but for the TYPE_CHECKING imports: keep them in step."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(corral.__file__).read_text())
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    imported = {alias.asname or alias.name for node in block.body for alias in node.names}  # type: ignore[attr-defined]
    assert imported == set(corral.__all__) - {"__version__"}
