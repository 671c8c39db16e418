"""Record classes for the modules every command imports (``pdu``,
``association``, ``dimse``, ``decoder``, ``expert``): the ``__init__``,
``__repr__``, ``__eq__`` and ``__hash__`` that ``dataclasses.dataclass``
would write, and ``__slots__`` and frozen instances on request, without
importing dataclasses.  dataclasses imports inspect, and with it ast, dis
and tokenize: 9 ms of every start, and its decorator took 6.7 ms for these
20 classes, all on the decoding thread while a summary's capture is being
walked.  Here one ``exec`` makes a class's methods (about 0.1 ms).

Only what these classes use: fields from the class's own annotations, in
order; a default value, or ``field(default_factory=...)``; ``eq``,
``frozen`` and ``slots`` as dataclasses means them (``eq`` without
``frozen`` leaves instances unhashable, as there).  The public API's classes
(``api.py``) stay dataclasses (``dataclasses.asdict`` works on them).
"""

from __future__ import annotations

from _thread import get_ident as _get_ident

__all__ = ["FrozenInstanceError", "field", "record", "replace"]

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """An attempt to change a field of a frozen record."""


class field:
    """A field's default made for each instance: ``field(default_factory=list)``."""

    __slots__ = ("default_factory",)

    def __init__(self, *, default_factory):
        self.default_factory = default_factory


def record(cls=None, /, *, eq: bool = True, frozen: bool = False, slots: bool = False):
    """Class decorator (see the module docstring); ``@record`` or ``@record(...)``."""
    def wrap(c):
        return _make(c, eq, frozen, slots)
    return wrap if cls is None else wrap(cls)


def replace(obj, **changes):
    """A new record of ``obj``'s class with these fields changed."""
    values = {name: getattr(obj, name) for name in obj.__record_fields__}
    values.update(changes)
    return obj.__class__(**values)


def _make(cls, eq: bool, frozen: bool, slots: bool):
    names = list(cls.__dict__.get("__annotations__", {}))
    defaults = {}
    for name in names:
        v = cls.__dict__.get(name, _MISSING)
        if v is not _MISSING:
            defaults[name] = v
    env = {"_MISSING": _MISSING, "_setattr": object.__setattr__, "_Frozen": FrozenInstanceError,
           "_repr_running": set(), "_get_ident": _get_ident}
    params, body = [], []
    seen_default = False
    for name in names:
        d = defaults.get(name, _MISSING)
        if d is _MISSING:
            if seen_default:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with a default")
            params.append(name)
            value = name
        elif isinstance(d, field):
            seen_default = True
            env[f"_f_{name}"] = d.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
        else:
            seen_default = True
            env[f"_d_{name}"] = d
            params.append(f"{name}=_d_{name}")
            value = name
        body.append(f"    _setattr(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}")
    src = [f"def __init__(self, {', '.join(params)}):", *(body or ["    pass"])]
    # __repr__ as dataclasses writes it, "..." for a record met again inside itself
    fields_repr = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    src += ["def __repr__(self):",
            "    key = (id(self), _get_ident())",
            "    if key in _repr_running:",
            "        return '...'",
            "    _repr_running.add(key)",
            "    try:",
            f"        return f'{{self.__class__.__qualname__}}({fields_repr})'",
            "    finally:",
            "        _repr_running.discard(key)"]
    own = ("(" + "".join(f"self.{n}," for n in names) + ")")
    if eq:
        other = ("(" + "".join(f"other.{n}," for n in names) + ")")
        src += ["def __eq__(self, other):",
                "    if other.__class__ is self.__class__:",
                f"        return {own} == {other}",
                "    return NotImplemented"]
    if frozen:
        src += ["def __setattr__(self, name, value):",
                "    raise _Frozen(f'cannot assign to field {name!r}')",
                "def __delattr__(self, name):",
                "    raise _Frozen(f'cannot delete field {name!r}')"]
        if eq:
            src += ["def __hash__(self):", f"    return hash({own})"]
    exec("\n".join(src), env)  # noqa: S102 - source made above from the class's own field names
    made = {}
    for name in ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__", "__hash__"):
        if name in env:
            fn = made[name] = env[name]
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
    if eq and not frozen and "__hash__" not in cls.__dict__:
        made["__hash__"] = None  # (as dataclasses: equal by value and mutable, so not hashable)
    made["__record_fields__"] = tuple(names)
    if slots:
        ns = dict(cls.__dict__)
        for name in names:
            ns.pop(name, None)  # the defaults live in __init__; a slot cannot share its name
        ns.pop("__dict__", None)
        ns.pop("__weakref__", None)
        ns.update(made)
        ns["__slots__"] = tuple(names)
        made_cls = type(cls)(cls.__name__, cls.__bases__, ns)
        made_cls.__qualname__ = cls.__qualname__
        return made_cls
    for name, value in made.items():
        setattr(cls, name, value)
    return cls
