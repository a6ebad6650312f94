"""`@record`: a frozen dataclass, built for a fraction of its import-time cost.

The one-shot command line's `create` and the spawn helper each import ~60 frozen
dataclasses, and `@dataclass(frozen=True)` spends ~330 µs on each: it compiles six
methods per class (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`), and importing `dataclasses` pulls in `inspect`, `ast`, `dis` and
`tokenize`. Together that was a third of those processes' import time.

`record` gives a class the behaviour of `@dataclass(frozen=True)` (the same
`__init__` signature, `__post_init__`, equality, hash, repr, frozenness,
`__match_args__`, pickling) but compiles only `__init__`; the other methods are
shared functions driven by per-class tuples of field names. `dataclasses` is
imported only when it is actually used: `dataclasses.fields()`, `replace()`,
`asdict()` and `is_dataclass()` read `__dataclass_fields__`, which is computed
on first access from a real dataclass built from the same annotations and
defaults (a twin), and cached on the class; a `FrozenInstanceError` is imported
when one is raised.

Only what corral uses is on the fast path: plain fields with defaults or
`field(default=..., default_factory=..., init=..., compare=...)` on a class with no
base. Anything else (ClassVar, InitVar, KW_ONLY, other `field` options, a base
class, `__slots__`, what `dataclass` refuses) is handed to the real
`dataclasses.dataclass`, so that the class is right first and fast second;
`__record__` says which path a class took (tests/unit/test_records.py lists the
fallbacks, and checks every record against its dataclass twin).
"""

from __future__ import annotations

import sys
from _thread import get_ident
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, TypeVar, dataclass_transform, overload

if TYPE_CHECKING:
    import dataclasses

_T = TypeVar("_T")

FAST = "fast"
FALLBACK = "fallback"


class _Missing:
    """No default given (dataclasses.MISSING, without importing dataclasses)."""

    def __repr__(self) -> str:
        return "<MISSING>"


MISSING: Any = _Missing()


class _HasDefaultFactory:
    """The default shown in `__init__`'s signature for a factory-made field, as dataclasses shows it."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY: Any = _HasDefaultFactory()


class Field:
    """What `field()` returns: the options of one field, read once by `record` (or by `dataclasses`)."""

    __slots__ = ("default", "default_factory", "init", "repr", "hash", "compare", "metadata", "kw_only")

    def __init__(
        self, default: Any, default_factory: Any, init: bool, repr: bool, hash: bool | None, compare: bool,
        metadata: Any, kw_only: Any,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.metadata = metadata
        self.kw_only = kw_only

    @property
    def fast(self) -> bool:
        """Whether `record` builds this field itself (else the class goes to `dataclasses`)."""
        return (
            self.repr is True and self.hash is None and self.metadata is None and self.kw_only is MISSING
            and (self.init or self.default is not MISSING or self.default_factory is not MISSING)
        )

    def real(self) -> dataclasses.Field[Any]:
        """The same options as a `dataclasses.field`."""
        import dataclasses

        def given(value: Any) -> Any:
            return dataclasses.MISSING if value is MISSING else value

        return dataclasses.field(  # type: ignore[no-any-return, call-overload]
            default=given(self.default), default_factory=given(self.default_factory), init=self.init,
            repr=self.repr, hash=self.hash, compare=self.compare, metadata=self.metadata, kw_only=given(self.kw_only),
        )

    def __repr__(self) -> str:
        return (
            f"field(default={self.default!r}, default_factory={self.default_factory!r}, init={self.init!r}, "
            f"repr={self.repr!r}, hash={self.hash!r}, compare={self.compare!r}, metadata={self.metadata!r}, "
            f"kw_only={self.kw_only!r})"
        )


def field(
    *, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, init: bool = True,
    repr: bool = True, hash: bool | None = None, compare: bool = True, metadata: Any = None, kw_only: Any = MISSING,
) -> Any:
    """`dataclasses.field` for a `record` (the same options), without importing dataclasses."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, hash, compare, metadata, kw_only)


# --------------------------------------------------------------------------- the decorator


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload
def record(*, frozen: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T] | None = None, /, *, frozen: bool = True) -> Any:
    """`@dataclass(frozen=True)` (or, with `frozen=False`, `@dataclass`), built cheaply when it can be."""

    def wrap(cls: type[_T]) -> type[_T]:
        plan = _plan(cls, frozen)
        if plan is None:
            return _fallback(cls, frozen)
        _build(cls, frozen, plan)
        return cls

    return wrap if cls is None else wrap(cls)


#: One field of a fast record: its name, annotation, and options.
_Spec = tuple[str, Any, Field]

_NOT_ON_THE_FAST_PATH = ("ClassVar", "InitVar", "KW_ONLY")


def _plan(cls: type, frozen: bool) -> list[_Spec] | None:
    """The fields of `cls` if `record` can build it exactly as `dataclass` would, else None."""
    if cls.__bases__ != (object,) or "__slots__" in cls.__dict__:
        return None
    if frozen and ("__setattr__" in cls.__dict__ or "__delattr__" in cls.__dict__):
        return None  # dataclass refuses them: let it say so
    annotations = cls.__dict__.get("__annotations__", {})
    real_field = getattr(sys.modules.get("dataclasses"), "Field", None)
    for name, value in cls.__dict__.items():
        if (isinstance(value, Field) or (real_field is not None and isinstance(value, real_field))) and (
            name not in annotations
        ):
            return None  # a field without an annotation: dataclass refuses it
    specs: list[_Spec] = []
    seen_default = False
    for name, annotation in annotations.items():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if any(word in text for word in _NOT_ON_THE_FAST_PATH) or name == "self" or name.startswith("__record"):
            return None
        value = getattr(cls, name, MISSING)
        if real_field is not None and isinstance(value, real_field):
            return None
        spec = value if isinstance(value, Field) else Field(value, MISSING, True, True, None, True, None, MISSING)
        if not spec.fast:
            return None
        if spec.default is not MISSING and type(spec.default).__hash__ is None:
            return None  # a mutable default: dataclass refuses it
        if spec.init:
            if spec.default is not MISSING or spec.default_factory is not MISSING:
                seen_default = True
            elif seen_default:
                return None  # a required field after a default: dataclass refuses it
        specs.append((name, annotation, spec))
    return specs


def _build(cls: type, frozen: bool, specs: list[_Spec]) -> None:
    """Give `cls` a compiled `__init__` and the shared methods (see the module's docstring)."""
    module = sys.modules.get(cls.__module__)
    globals_ = module.__dict__ if module is not None else {}
    setter = "__record_setattr" if frozen else None
    params = ["self"]
    lines = []
    values: dict[str, Any] = {"__record_setattr": object.__setattr__, "__record_factory": _HAS_DEFAULT_FACTORY}
    annotations: dict[str, Any] = {}
    for name, annotation, spec in specs:
        if spec.default_factory is not MISSING:
            values[f"__record_dflt_{name}"] = spec.default_factory
            if spec.init:
                params.append(f"{name}=__record_factory")
                value = f"__record_dflt_{name}() if {name} is __record_factory else {name}"
            else:
                value = f"__record_dflt_{name}()"
        elif spec.init:
            if spec.default is not MISSING:
                values[f"__record_dflt_{name}"] = spec.default
                params.append(f"{name}=__record_dflt_{name}")
            else:
                params.append(name)
            value = name
        else:
            continue  # init=False with a default: the class attribute is the value, as with dataclass
        if spec.init:
            annotations[name] = annotation
        lines.append(f"  {setter}(self,{name!r},{value})" if setter else f"  self.{name}={value}")
    if hasattr(cls, "__post_init__"):
        lines.append("  self.__post_init__()")
    body = "\n".join(lines) or "  pass"
    text = f"def __create_fn__({', '.join(values)}):\n def __init__({','.join(params)}):\n{body}\n return __init__"
    namespace: dict[str, Any] = {}
    exec(text, globals_, namespace)
    init = namespace["__create_fn__"](**values)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    annotations["return"] = None
    init.__annotations__ = annotations

    for name, _, spec in specs:  # the class attribute is the default, as with dataclass
        if isinstance(cls.__dict__.get(name), Field):
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
    names = tuple(name for name, _, _ in specs)
    compared = tuple(name for name, _, spec in specs if spec.compare)
    cls.__record__ = FAST  # type: ignore[attr-defined]
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    cls.__record_specs__ = tuple(specs)  # type: ignore[attr-defined]
    cls.__record_fields__ = names  # type: ignore[attr-defined]
    cls.__record_key__ = _key(compared)  # type: ignore[attr-defined]
    # Read before `__eq__` is set: a body defining `__eq__` gets `__hash__ = None` from Python (not explicit).
    class_hash = cls.__dict__.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in cls.__dict__))
    _set_new(cls, "__init__", init)
    _set_new(cls, "__repr__", _repr)
    _set_new(cls, "__eq__", _eq)
    if frozen:
        cls.__setattr__ = _setattr  # type: ignore[method-assign, assignment]
        cls.__delattr__ = _delattr  # type: ignore[method-assign, assignment]
    if not explicit_hash:
        cls.__hash__ = _hash if frozen else None  # type: ignore[method-assign, assignment]
    if not cls.__dict__.get("__doc__"):
        cls.__doc__ = _Lazy("__doc__", cls)  # type: ignore[assignment]
    _set_new(cls, "__match_args__", tuple(name for name, _, spec in specs if spec.init))
    cls.__dataclass_fields__ = _Lazy("__dataclass_fields__", cls)  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _Lazy("__dataclass_params__", cls)  # type: ignore[attr-defined]


def _set_new(cls: type, name: str, value: Any) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of the compared fields that `==` and `hash` use, as dataclass's methods build it."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    return lambda self: ()


def _fallback(cls: type[_T], frozen: bool) -> type[_T]:
    """The real dataclass, for what `record` does not build itself (its fields given as `dataclasses.field`)."""
    import dataclasses

    for name, value in list(cls.__dict__.items()):
        if isinstance(value, Field):
            setattr(cls, name, value.real())
    made = dataclasses.dataclass(frozen=frozen)(cls)
    made.__record__ = FALLBACK  # type: ignore[attr-defined]
    return made


# --------------------------------------------------------------------------- the shared methods
# Each reads its class's tuples: the class of `self` (a subclass without `@record` shares its
# base's fields, as it shares a dataclass's generated methods).

_repr_running: set[tuple[int, int]] = set()


def _repr(self: Any) -> str:
    key = id(self), get_ident()
    if key in _repr_running:
        return "..."  # as dataclass's reprlib.recursive_repr
    _repr_running.add(key)
    try:
        cls = self.__class__
        inner = ", ".join([f"{name}={getattr(self, name)!r}" for name in cls.__record_fields__])
        return f"{cls.__qualname__}({inner})"
    finally:
        _repr_running.discard(key)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__class__.__record_key__
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__class__.__record_key__(self))


def _owner(cls: type) -> type:
    """The record class whose frozen `__setattr__` this is: `cls` or its nearest base made by `record`."""
    return next(base for base in cls.__mro__ if "__record_fields__" in base.__dict__)


def _setattr(self: Any, name: str, value: Any) -> None:
    cls = type(self)
    if "__record_fields__" in cls.__dict__ or name in cls.__record_fields__:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    owner: Any = _owner(cls)
    super(owner, self).__setattr__(name, value)


def _delattr(self: Any, name: str) -> None:
    cls = type(self)
    if "__record_fields__" in cls.__dict__ or name in cls.__record_fields__:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")
    owner: Any = _owner(cls)
    super(owner, self).__delattr__(name)


# --------------------------------------------------------------------------- what dataclasses reads


class _Lazy:
    """`__dataclass_fields__`, `__dataclass_params__` or `__doc__` of a record, computed on first access.

    Computing them imports `dataclasses` (and `inspect`), which is what `record` avoids
    at import time; the values come from a real dataclass built from the same fields.
    Each is then set on the class, replacing this descriptor.
    """

    def __init__(self, name: str, owner: type) -> None:
        self.name = name
        self.owner = owner

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        cls = self.owner
        if self.name == "__doc__":
            import inspect

            try:
                text = str(inspect.signature(cls)).replace(" -> None", "")
            except (TypeError, ValueError):
                text = ""
            value: Any = cls.__name__ + text
            type.__setattr__(cls, "__doc__", value)
            return value
        twin: Any = dataclass_twin(cls)
        type.__setattr__(cls, "__dataclass_fields__", twin.__dataclass_fields__)
        type.__setattr__(cls, "__dataclass_params__", twin.__dataclass_params__)
        return cls.__dict__[self.name]


def dataclass_twin(cls: type) -> type:
    """A real dataclass with the fields of record `cls` (and nothing else): what `dataclasses` reads of it."""
    import dataclasses

    namespace: dict[str, Any] = {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": "twin", "__annotations__": {},
    }
    for name, annotation, spec in cls.__record_specs__:  # type: ignore[attr-defined]
        namespace["__annotations__"][name] = annotation
        namespace[name] = spec.real()
    frozen = cls.__record_frozen__  # type: ignore[attr-defined]
    return dataclasses.dataclass(frozen=frozen)(type(cls.__name__, (), namespace))


def field_names(obj: Any) -> tuple[str, ...]:
    """The names `dataclasses.fields(obj)` gives, in order, without importing dataclasses for a record."""
    owner = _fast_owner(obj if isinstance(obj, type) else type(obj))
    if owner is not None:
        return owner.__record_fields__  # type: ignore[attr-defined, no-any-return]
    import dataclasses

    return tuple(f.name for f in dataclasses.fields(obj))


def _fast_owner(cls: type) -> type | None:
    """The record class that gives `cls` its fields, if `record` built it (not `dataclasses`)."""
    for base in cls.__mro__:
        if "__dataclass_fields__" in base.__dict__:
            return base if "__record_fields__" in base.__dict__ else None
    return None


def replace(obj: _T, /, **changes: Any) -> _T:
    """`dataclasses.replace`, without importing dataclasses for a record."""
    owner = _fast_owner(type(obj))
    if owner is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for name, _, spec in owner.__record_specs__:  # type: ignore[attr-defined]
        if not spec.init:
            if name in changes:
                raise ValueError(f"field {name} is declared with init=False, it cannot be specified with replace()")
        elif name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)
