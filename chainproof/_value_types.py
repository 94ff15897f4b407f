"""The value contract's type registry: types a developer registers (:func:`register_value_type`)
and how classes are named in the tagged JSON (``"module:qualname"``, checked to import back).
Public through :mod:`chainproof.values`."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from chainproof.errors import InputError, UnsupportedValue


@dataclasses.dataclass(frozen=True)
class _Custom:
    cls: type
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_BY_CLS: dict[type, _Custom] = {}
_BY_NAME: dict[str, _Custom] = {}
_NAMES: dict[type, str] = {}  # classes whose module:qualname was checked to import back


def register_value_type(cls: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any], *,
                        name: str | None = None) -> None:
    """Let values of exactly ``cls`` cross Chainproof's boundaries: ``encode(value)`` returns a
    value that is itself within the contract (plain JSON or other supported values) and
    ``decode(encoded)`` rebuilds the instance. ``name`` is the stable name written into the JSON
    (default ``"module:qualname"``); register under the same name in every process that reads such
    runs, e.g. at import time of the module defining ``cls`` (a decode imports the module named
    before ``:`` when the name is not registered yet).

    Modelled on LangGraph's serializer registry (``JsonPlusSerializer`` with custom
    ``_default``/reviver hooks) and pydantic's custom types (``PlainSerializer`` +
    ``BeforeValidator`` pairs): one encode and one decode function per type.

    Raises ``InputError`` when ``cls`` is not a class, the functions are not callable, or the name
    is already taken by another class.
    """
    if not isinstance(cls, type):
        raise InputError(f"register_value_type: cls: expected a class, got {cls!r}")
    if not callable(encode) or not callable(decode):
        raise InputError(f"register_value_type({cls.__name__}): encode and decode must be callables")
    key = name or f"{cls.__module__}:{cls.__qualname__}"
    taken = _BY_NAME.get(key)
    if taken is not None and taken.cls is not cls:
        raise InputError(f"register_value_type: name {key!r} is already registered for {taken.cls!r}")
    entry = _Custom(cls, key, encode, decode)
    _BY_CLS[cls], _BY_NAME[key] = entry, entry


def import_class(name: str, *, where: str = "value") -> type:
    """The class named ``"module:qualname"``. Raises ``UnsupportedValue`` naming the class and the
    import error when it cannot be imported (the stored value is never returned as a dict)."""
    module, sep, qualname = name.partition(":")
    try:
        if not sep:
            raise ImportError("expected 'module:qualname'")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UnsupportedValue(where, "", name, f"the class cannot be imported here ({type(exc).__name__}: {exc}); "
                                              "install or import the package that defines it") from None
    if not isinstance(obj, type):
        raise UnsupportedValue(where, "", name, "the name does not refer to a class")
    return obj


def class_name(cls: type) -> str:
    """``"module:qualname"`` of ``cls``, checked once to import back to ``cls``. Raises
    ``_Refusal`` (a class in ``__main__`` or a function body cannot be restored elsewhere)."""
    name = _NAMES.get(cls)
    if name is not None:
        return name
    name = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise _Refusal(cls, "its class is defined in __main__ or inside a function, so another process cannot "
                            "import it; move it to a module, or register_value_type(..., name=...)")
    try:
        found = import_class(name)
    except UnsupportedValue:
        found = None
    if found is not cls:
        raise _Refusal(cls, f"{name} does not import back to this class; register_value_type(..., name=...)")
    _NAMES[cls] = name
    return name


class _Refusal(Exception):
    """Internal: an unsupported value; ``parts`` collects the key path while unwinding."""

    def __init__(self, value_or_cls: Any, hint: str = ""):
        cls = value_or_cls if isinstance(value_or_cls, type) else type(value_or_cls)
        self.type_name, self.hint = cls.__qualname__, hint
        self.parts: list[Any] = []
