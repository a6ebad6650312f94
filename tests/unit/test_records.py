"""`@record` (corral/records.py) against the real `@dataclass` it stands in for.

The contract test finds every class of corral decorated with `@record`, builds the
real dataclass twin of it (the same class body, the same annotations, its fields
given as `dataclasses.field`), and checks that both behave alike: signature,
repr, equality, hash, frozenness, pickling, `__match_args__`, and what the
`dataclasses` functions read. The focused tests below pin the decorator's own rules.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import corral
from corral import records
from corral.records import field, record

CORRAL = Path(corral.__file__).parent

#: The classes `@record` hands to `dataclasses.dataclass` (see records.py: what the fast path
#: does not support). None today: every record of corral is built by `record` itself.
FALLBACKS: set[str] = set()

#: The records whose required fields need values their validation accepts (the others get
#: simple values by annotation: 1, "x", (), None, a sample record).
SAMPLES: dict[str, dict[str, Any]] = {
    "Hook": {"path": "/bin/true"},
    "Mount": {"destination": "/mnt"},
    "Device": {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    "Namespace": {"type": "pid"},
    "Rlimit": {"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1},
    "Root": {"path": "/rootfs"},
    "IDMapping": {"container_id": 0, "host_id": 1000, "size": 1},
    "DeviceRule": {"allow": True},
    "HugepageLimit": {"page_size": "2MB", "limit": 1},
    "Process": {"args": ("sh",)},
    "Interface": {"name": "eth0"},
    "Route": {"destination": "0.0.0.0/0"},
    "SeccompArg": {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
    "SeccompSyscall": {"names": ("read",), "action": "SCMP_ACT_ALLOW"},
    "Seccomp": {"default_action": "SCMP_ACT_ALLOW"},
    "TimeOffset": {"secs": 1},
    "IOPriority": {"ioclass": "IOPRIO_CLASS_BE"},
    "Scheduler": {"policy": "SCHED_OTHER"},
    "CPUAffinity": {"initial": "0", "final": "0"},
    "Personality": {"domain": "LINUX"},
}


def _record_classes() -> list[type]:
    """Every class of corral that `@record` made (found in the source, then imported)."""
    found: list[type] = []
    for path in sorted(CORRAL.rglob("*.py")):
        if "@record" not in path.read_text():
            continue
        name = ".".join(path.relative_to(CORRAL.parent).with_suffix("").parts)
        module = importlib.import_module(name)
        found += [
            value for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == name and "__record__" in value.__dict__
        ]
    return found


RECORDS = _record_classes()


def _generated(cls: type, name: str, value: Any) -> bool:
    """Whether `record` put this attribute on the class (the twin gets dataclass's own instead)."""
    if name.startswith("__record") or name in ("__dict__", "__weakref__", "__match_args__"):
        return True
    if name in ("__dataclass_fields__", "__dataclass_params__", "__doc__") and isinstance(value, records._Lazy):
        return True
    if name == "__init__":
        return getattr(value, "__code__", None) is not None and value.__code__.co_filename == "<string>"
    if name == "__hash__" and value is None and not cls.__record_frozen__:  # type: ignore[attr-defined]
        return True
    return value in (records._repr, records._eq, records._hash, records._setattr, records._delattr)


def dataclass_twin(cls: type) -> type:
    """The class `@dataclass(frozen=...)` makes of the same body as record `cls`."""
    namespace: dict[str, Any] = {"__qualname__": cls.__qualname__}
    for name, value in cls.__dict__.items():
        if not _generated(cls, name, value):
            namespace[name] = value
    for name, _, spec in cls.__record_specs__:  # type: ignore[attr-defined]
        namespace[name] = spec.real()
    return dataclasses.dataclass(frozen=cls.__record_frozen__)(type(cls.__name__, (), namespace))  # type: ignore[attr-defined]


def _simple(annotation: str, module: Any) -> Any:
    text = annotation.replace(" ", "")
    if text.endswith("|None") or text.startswith("Optional["):
        return None
    if text.startswith("tuple[") or text == "tuple":
        return ()
    if text.startswith(("list[", "list")):
        return []
    if text.startswith(("Mapping[", "dict[")):
        return {}
    simple = {"int": 1, "float": 1.0, "str": "x", "bool": True, "bytes": b"x"}
    if text in simple:
        return simple[text]
    other = getattr(module, text, None)
    if isinstance(other, type) and "__record__" in other.__dict__:
        return other(**required(other))
    return None


def required(cls: type) -> dict[str, Any]:
    """Values for the fields without defaults: the class's sample, else simple ones by annotation."""
    module = sys.modules[cls.__module__]
    values = dict(SAMPLES.get(cls.__name__, {}))
    for name, annotation, spec in cls.__record_specs__:  # type: ignore[attr-defined]
        if spec.init and spec.default is records.MISSING and spec.default_factory is records.MISSING:
            values.setdefault(name, _simple(annotation, module))
    return values


def _field_view(f: dataclasses.Field[Any]) -> tuple[Any, ...]:
    return (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare, f.metadata,
            f.kw_only, f._field_type)  # type: ignore[attr-defined]


def _raised(action: Any) -> tuple[type, str] | None:
    try:
        action()
    except Exception as e:  # noqa: BLE001  (compared, whatever it is)
        return type(e), str(e)
    return None


def test_the_records_are_found_and_the_fallbacks_are_the_listed_ones() -> None:
    assert len(RECORDS) >= 55, [c.__qualname__ for c in RECORDS]
    assert {c.__qualname__ for c in RECORDS if c.__record__ == records.FALLBACK} == FALLBACKS  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [c for c in RECORDS if c.__record__ == records.FAST], ids=lambda c: c.__qualname__)  # type: ignore[attr-defined]
def test_a_record_behaves_as_its_dataclass_twin(cls: Any) -> None:
    twin: Any = dataclass_twin(cls)
    values = required(cls)
    made: Any = cls(**values)
    same, other = cls(**values), twin(**values)

    assert str(inspect.signature(cls)) == str(inspect.signature(twin))
    assert str(inspect.signature(cls.__init__)) == str(inspect.signature(twin.__init__))
    assert cls.__init__.__qualname__ == twin.__init__.__qualname__
    assert cls.__doc__ == twin.__doc__
    assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
    assert list(vars(made).items()) == list(vars(other).items())
    assert repr(made) == repr(other)
    assert made == same and not made != same
    assert made.__eq__(other) is NotImplemented and other.__eq__(made) is NotImplemented
    assert made != other  # neither knows the other's class
    if cls.__record_frozen__:  # type: ignore[attr-defined]
        hashed = _raised(lambda: hash(made))  # a Mapping field's sample is a dict: both refuse it alike
        assert hashed == _raised(lambda: hash(other))
        if hashed is None:
            assert hash(made) == hash(same) == hash(other)
    else:
        assert cls.__hash__ is None and twin.__hash__ is None

    for target in (made, other):
        name = next(iter(vars(target)), "x")
        for attribute in (name, "not_a_field"):
            setting = _raised(lambda: setattr(target, attribute, 1))
            deleting = _raised(lambda: delattr(target, attribute))
            if cls.__record_frozen__:  # type: ignore[attr-defined]
                assert setting == (dataclasses.FrozenInstanceError, f"cannot assign to field {attribute!r}")
                assert deleting == (dataclasses.FrozenInstanceError, f"cannot delete field {attribute!r}")
    if not cls.__record_frozen__:  # type: ignore[attr-defined]
        made, other = cls(**values), twin(**values)

    copy = pickle.loads(pickle.dumps(made))
    assert type(copy) is cls and copy == made and list(vars(copy).items()) == list(vars(made).items())

    assert all(map(dataclasses.is_dataclass, (cls, made, type(made))))
    assert [_field_view(f) for f in dataclasses.fields(made)] == [_field_view(f) for f in dataclasses.fields(other)]
    assert records.field_names(made) == tuple(f.name for f in dataclasses.fields(other))
    assert dataclasses.asdict(made) == dataclasses.asdict(other)
    for replaced in (dataclasses.replace(made), records.replace(made)):
        assert type(replaced) is cls and repr(replaced) == repr(dataclasses.replace(other))
        assert replaced == made
    params = made.__dataclass_params__  # type: ignore[attr-defined]
    assert repr(params) == repr(other.__dataclass_params__)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the decorator itself


@record
class Point:
    """A record for the tests below."""

    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    seen: frozenset[str] = field(default=frozenset(), init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", int(self.x))  # normalises, as corral.config's records do
        object.__setattr__(self, "seen", frozenset(self.tags))


@record
class Noted:
    """A field left out of == and hash."""

    x: int
    note: str = field(default="", compare=False)


@record
class Other:
    """Same fields as Point's first two."""

    x: int
    y: int = 0


def test_a_default_factory_makes_a_fresh_object_for_each_instance() -> None:
    a, b = Point(1), Point(1)
    assert a.tags == [] and a.tags is not b.tags
    given = ["t"]
    assert Point(1, 2, given).tags is given


def test_post_init_runs_and_can_normalise() -> None:
    p = Point("3", tags=["a"])  # type: ignore[arg-type]
    assert p.x == 3 and p.seen == frozenset({"a"})
    assert Point.seen == frozenset()  # an init=False field's default stays the class attribute


def test_equality_needs_the_same_class_and_ignores_compare_false_fields() -> None:
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(1, 3)
    assert Point(1, 2).__eq__(Other(1, 2)) is NotImplemented
    assert Point(1, 2) != Other(1, 2)
    a, b = Point(1, 2), Point(1, 2)
    object.__setattr__(b, "seen", frozenset({"z"}))
    assert a == b
    assert Noted(1, "a") == Noted(1, "b") and hash(Noted(1, "a")) == hash(Noted(1, "b")) == hash((1,))
    assert hash(Other(1, 2)) == hash((1, 2))


def test_repr_is_dataclass_s_and_survives_recursion() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[], seen=frozenset())"
    loop = Point(1, tags=[])
    loop.tags.append(loop)  # type: ignore[arg-type]
    assert repr(loop) == "Point(x=1, y=0, tags=[...], seen=frozenset())"

    class Outer:
        @record
        class Inner:
            x: int

    assert repr(Outer.Inner(1)) == f"{Outer.__qualname__}.Inner(x=1)"  # the qualified name, as dataclass


def test_a_record_is_frozen_but_a_plain_subclass_may_add_attributes() -> None:
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y

    class Sub(Point):
        pass

    s = Sub(1)
    s.note = "ok"  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.x = 2  # type: ignore[misc]
    assert s != Point(1) and dataclasses.fields(s) == dataclasses.fields(Point)


def test_replace_refuses_an_init_false_field_as_dataclasses_does() -> None:
    with pytest.raises(ValueError, match="init=False"):
        records.replace(Point(1), seen=frozenset())
    assert records.replace(Point(1, tags=["a"]), x=5) == Point(5, tags=["a"])


def test_a_non_frozen_record_is_mutable_and_unhashable() -> None:
    @record(frozen=False)
    class Box:
        items: list[int] = field(default_factory=list)

    b = Box()
    b.items = [1]
    assert b == Box([1]) and Box.__hash__ is None
    assert Box.__record__ == records.FAST  # type: ignore[attr-defined]


def test_what_the_fast_path_does_not_build_falls_back_to_dataclass() -> None:
    @record
    class WithClassVar:
        limit: ClassVar[int] = 3
        x: int = 0

    @record
    class WithMetadata:
        x: int = field(default=0, metadata={"k": "v"})

    @record
    class Derived(Other):
        z: int = 0

    for cls in (WithClassVar, WithMetadata, Derived):
        assert cls.__dict__["__record__"] == records.FALLBACK
        assert "__init__" in cls.__dict__ and isinstance(cls.__dict__["__dataclass_fields__"], dict)
    assert [f.name for f in dataclasses.fields(WithClassVar)] == ["x"]
    assert dataclasses.fields(WithMetadata)[0].metadata == {"k": "v"}
    assert repr(Derived(1, 2, 3)).endswith(".Derived(x=1, y=2, z=3)")
    with pytest.raises(TypeError, match="non-default argument"):
        @record
        class Unordered:  # dataclass's own refusal, through the fallback
            x: int = 0
            y: int  # type: ignore[misc]


def test_the_specs_are_the_class_body_s_fields() -> None:
    """What the twin is built from (the contract test above) is what the class body said."""
    specs = {name: (annotation, spec) for name, annotation, spec in Point.__record_specs__}  # type: ignore[attr-defined]
    assert list(specs) == ["x", "y", "tags", "seen"]
    assert specs["y"][0] == "int" and specs["y"][1].default == 0
    assert specs["tags"][1].default_factory is list and specs["seen"][1].init is False


def test_building_and_using_records_imports_no_dataclasses() -> None:
    """Nor may what the init does with them after pivot_root, where nothing more can be imported
    (a hook's report once imported dataclasses there, and the init died)."""
    code = (
        "import sys; from corral.executor import monitor, observer, protocol, spawn; import corral.config, corral.types; "
        "from corral.config import Config, Process; c = Config.from_dict({'ociVersion': '1.0.2', 'root': {'path': '/r'}, "
        "'process': {'args': ['sh'], 'cwd': '/'}}); repr(c); hash(c); c == c; c.to_dict(); "
        "Process(args=('sh',)).resolved(); Process(args=('sh',)).resolved_against(c.process); "
        "from corral.executor.hooks import HookOutcome, to_message; to_message(HookOutcome('k', '/p', 0, None, False, 0.1)); "
        "from corral.executor.cgroups.devices import with_device_rules; with_device_rules(c); "
        "print(*[m for m in ('dataclasses', 'inspect') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORRAL.parent)
    assert out.stdout.split() == []


def test_an_explicit_hash_or_eq_of_the_body_is_kept_as_dataclass_keeps_it() -> None:
    def body(namespace: dict[str, Any]) -> dict[str, Any]:
        return {"__annotations__": {"x": "int"}, "__module__": __name__, **namespace}

    cases = {
        "no hash": {},
        "hash None": {"__hash__": None},
        "own hash": {"__hash__": lambda self: 7},
        "own eq": {"__eq__": lambda self, other: True},
    }
    for case, namespace in cases.items():
        made = record(type("R", (), body(namespace)))
        twin = dataclasses.dataclass(frozen=True)(type("R", (), body(namespace)))
        assert made.__record__ == records.FAST, case  # type: ignore[attr-defined]
        assert (made.__hash__ is None) == (twin.__hash__ is None), case
        if made.__hash__ is not None:
            assert hash(made(1)) == hash(twin(1)), case
        assert (made(1) == made(2)) == (twin(1) == twin(2)), case
