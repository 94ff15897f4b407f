"""The value contract: which Python values a run may carry, and their tagged plain-JSON form.

Run inputs, tool arguments and results, decisions, approval edits and the checkpointed state pass
through :func:`encode_value` on the way in and :func:`decode_value` on the way out, so every
supported value comes back as the same type with the same value, in another process and in a
replay:

=====================  ============================================================================
value                  stored as
=====================  ============================================================================
``str`` ``int``        itself (exact types only: ``bool`` is kept, a subclass such as a ``str``
``float`` ``bool``     subclass is refused, it would come back as the base type)
``None``
``dict`` (str keys)    itself, each value encoded. The key ``"$cp"`` is reserved: a dict with it
``list``               is taken as an already tagged value and passes through unchanged (so
                       encoding twice is encoding once); one that is not a well-formed tag is
                       refused
``tuple``              ``{"$cp": "tuple", "v": [...]}``
``datetime``           ``{"$cp": "datetime", "v": ISO 8601}``; an IANA zone adds ``"tz": KEY``
                       (``zoneinfo.ZoneInfo``; ``"fold": 1`` for the second of two equal wall
                       times), a named ``datetime.timezone`` adds ``"tzname"``. So a
                       ``ZoneInfo("America/New_York")`` datetime plus 24 h across 2018-03-11 is
                       still right after a round trip (a fixed offset would be off by an hour).
                       pydantic's own fixed offset (``pydantic_core.TzInfo``, what parsing an ISO
                       string gives) is stored as the offset and comes back as ``datetime.timezone``.
``date``               ``{"$cp": "date", "v": "YYYY-MM-DD"}``
``Decimal``            ``{"$cp": "decimal", "v": str(d)}`` (every digit and the exponent kept)
``Enum`` member        ``{"$cp": "enum", "cls": NAME, "v": encoded member value}``
pydantic model         ``{"$cp": "model", "cls": NAME, "v": {field: encoded value}}`` (+ ``"extra"``
                       for ``extra="allow"`` fields, ``"set"`` when not every field was set); fields
                       under ``Any`` keep their own types (a model stays a model)
dataclass              ``{"$cp": "dataclass", "cls": NAME, "v": {field: encoded value}}`` over
                       ``dataclasses.fields`` (``init=False`` fields included)
registered type        ``{"$cp": "custom", "cls": NAME, "v": encoded encode(value)}``
                       (:func:`register_value_type`)
=====================  ============================================================================

Anything else (``Fraction``, ``range``, ``set``, ``bytes``, NaN, an ``int`` beyond 64 bits, an
arbitrary class, ``object()``, a ``datetime`` subclass, another tzinfo) raises
:class:`~chainproof.errors.UnsupportedValue` naming where (the tool or field), the key path
(``result.items[2].when``) and the type. Nothing is stored in its place.

Plain JSON encodes to itself (the same object, after one walk that allocates nothing), so audit
rows, hashes and recorded runs of plain-JSON values are byte-identical to those written before
this contract existed.

**Class names.** ``NAME`` is ``"module:qualname"`` (the form of entry points and of pydantic's
``ImportString``), or the ``name`` given to :func:`register_value_type`. At encode time the name
must import back to the very class, so classes defined in ``__main__`` or inside a function are
refused (a new process could not restore them). At decode time an unknown registered name or a
class that no longer imports raises ``UnsupportedValue`` naming the class and the import error;
it never falls back to a dict.

**Restoring.** Enum members are looked up by value (``cls(value)``). Models are rebuilt with
``model_construct`` from their stored field values and dataclasses with ``cls.__new__`` plus the
stored fields, without running ``__init__``/``__post_init__`` again: the state is restored as it
was, as :mod:`copy` and :mod:`pickle` do. Pydantic private attributes are not stored (as in
``model_dump``) and come back as their defaults. A dataclass instance carrying attributes that are
not fields is refused (they would be lost).

Tags follow LangGraph's ``JsonPlusSerializer`` (``{"lc": 2, "type": "constructor", ...}``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from pydantic_core import TzInfo

from chainproof._value_types import (
    _BY_CLS,
    _BY_NAME,
    _Refusal,
    class_name,
    import_class,
    register_value_type,
)
from chainproof.errors import UnsupportedValue

__all__ = [
    "TAG",
    "class_name",
    "decision_form",  # noqa: F822 - lazily re-exported (__getattr__)
    "decode_value",
    "encode_value",
    "hook_state",
    "import_class",
    "is_plain_json",
    "register_value_type",
    "restore_model",  # noqa: F822
    "validate_edit",  # noqa: F822
]

TAG = "$cp"
"""The key that marks a tagged value (short, and not an identifier, so it never clashes with a
field name)."""

_PLAIN = frozenset({str, int, float, bool, type(None)})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what msgpack (the checkpointer) and SQL BIGINT hold


def _path(root: str, parts: list[Any]) -> str:
    out = root
    for p in reversed(parts):
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += f".{p}" if out else p
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out


def encode_value(value: Any, *, where: str = "value", root: str = "") -> Any:
    """The tagged plain-JSON form of ``value`` (see the module docstring); plain JSON comes back
    as the same object. ``where`` (a tool or field name) and ``root`` (the path prefix, e.g.
    ``"result"``) only name the value in errors. Raises ``UnsupportedValue(where, path, type)``."""
    try:
        return _enc(value)
    except _Refusal as exc:
        raise UnsupportedValue(where, _path(root, exc.parts), exc.type_name, exc.hint) from None
    except RecursionError:
        raise UnsupportedValue(where, root, type(value).__qualname__, "it nests too deeply (or refers to itself)") from None


def is_plain_json(value: Any) -> bool:
    """True when ``value`` is plain JSON (exact str/int/float/bool/None, str-keyed dicts, lists)
    without the reserved key ``"$cp"``, i.e. it encodes to itself."""
    if type(value) is dict:
        return TAG not in value and all(type(k) is str and is_plain_json(v) for k, v in value.items())
    if type(value) is list:
        return all(is_plain_json(v) for v in value)
    return type(value) in _PLAIN


def _enc_dict(value: dict) -> dict:
    out = None
    for k, v in value.items():
        if type(k) is not str:
            raise _Refusal(k, "dict keys must be str (JSON object keys)")
        try:
            e = _enc(v)
        except _Refusal as exc:
            exc.parts.append(k)
            raise
        if e is not v:
            if out is None:
                out = dict(value)
            out[k] = e
    return out if out is not None else value


def _enc_list(value: list | tuple) -> list:
    out = None
    for i, v in enumerate(value):
        try:
            e = _enc(v)
        except _Refusal as exc:
            exc.parts.append(i)
            raise
        if e is not v:
            if out is None:
                out = list(value)
            out[i] = e
    return out if out is not None else value  # type: ignore[return-value]


def _enc(value: Any) -> Any:
    t = type(value)
    if t in _PLAIN:
        if (t is float and not math.isfinite(value)) or (t is int and not _INT_MIN <= value <= _INT_MAX):
            raise _Refusal(value, "NaN, infinities and integers beyond 64 bits are not JSON that every store "
                                  "keeps (PostgreSQL's json, the checkpointer); use None, a str or a Decimal")
        return value
    if t is dict:
        if TAG in value:  # already encoded: passes through, so encoding is idempotent
            _check_tag(value)
            return value
        return _enc_dict(value)
    if t is list:
        return _enc_list(value)
    custom = _BY_CLS.get(t)
    if custom is not None:
        return {TAG: "custom", "cls": custom.name, "v": _enc(custom.encode(value))}
    if t is tuple:
        return {TAG: "tuple", "v": list(_enc_list(value))}
    if t is datetime:
        return _enc_datetime(value)
    if t is date:
        return {TAG: "date", "v": value.isoformat()}
    if t is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, Enum):
        return {TAG: "enum", "cls": class_name(t), "v": _enc(value.value)}
    if isinstance(value, BaseModel):
        return _enc_model(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _enc_dataclass(value)
    raise _Refusal(value, _HINTS.get(t.__name__, "register it with chainproof.values.register_value_type, "
                                                 "or convert it to a supported type"))


_HINTS = {
    "Fraction": "store it as a Decimal, a float or a [numerator, denominator] pair",
    "range": "store it as a list or as its start/stop/step",
    "set": "store it as a sorted list", "frozenset": "store it as a sorted list",
    "bytes": "store it as base64 text", "object": "objects without state cannot be stored",
}


def _enc_datetime(value: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    tz = value.tzinfo
    if tz is None:
        pass
    elif type(tz) is ZoneInfo:
        if tz.key is None:
            raise _Refusal(value, "its ZoneInfo was loaded from a file and has no key")
        out["tz"] = tz.key
        if value.fold:
            out["fold"] = 1
    elif type(tz) is timezone:
        plain = timezone(tz.utcoffset(None))
        if tz.tzname(None) != plain.tzname(None):
            out["tzname"] = tz.tzname(None)
    elif type(tz) is not TzInfo:  # pydantic's parsed fixed offset is stored as a fixed offset
        raise _Refusal(tz, "use zoneinfo.ZoneInfo (an IANA zone) or datetime.timezone")
    return out


def _enc_model(value: BaseModel) -> dict[str, Any]:
    cls = type(value)
    fields = _enc_dict(dict(value.__dict__))
    out: dict[str, Any] = {TAG: "model", "cls": class_name(cls), "v": fields}
    if value.__pydantic_extra__:
        try:
            out["extra"] = _enc_dict(dict(value.__pydantic_extra__))
        except _Refusal as exc:
            exc.parts.append("extra")
            raise
    unset = [k for k in value.__dict__ if k not in value.model_fields_set]
    if unset:
        out["set"] = sorted(value.model_fields_set)
    return out


def _enc_dataclass(value: Any) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(value)]
    state = getattr(value, "__dict__", None)
    if state is not None and state.keys() - set(names):
        raise _Refusal(value, f"it has attributes that are not fields ({sorted(state.keys() - set(names))}), "
                              "which would be lost; declare them as fields")
    return {TAG: "dataclass", "cls": class_name(type(value)), "v": _enc_dict({n: getattr(value, n) for n in names})}


def decode_value(data: Any, *, where: str = "value") -> Any:
    """The Python value of a tagged plain-JSON form (the inverse of :func:`encode_value`); plain
    JSON comes back as the same object. Raises ``UnsupportedValue`` naming the class when a tagged
    value's class cannot be imported or is not registered, or a tag is malformed."""
    return _dec(data, where)


def _dec(data: Any, where: str) -> Any:
    t = type(data)
    if t is dict:
        if TAG in data:
            return _dec_tagged(data, where)
        out = None
        for k, v in data.items():
            d = _dec(v, where)
            if d is not v:
                if out is None:
                    out = dict(data)
                out[k] = d
        return out if out is not None else data
    if t is list:
        out_l = None
        for i, v in enumerate(data):
            d = _dec(v, where)
            if d is not v:
                if out_l is None:
                    out_l = list(data)
                out_l[i] = d
        return out_l if out_l is not None else data
    return data


_TAG_KEYS = {"tuple": {"v"}, "datetime": {"v", "tz", "fold", "tzname"}, "date": {"v"},
             "decimal": {"v"}, "enum": {"cls", "v"}, "model": {"cls", "v", "extra", "set"},
             "dataclass": {"cls", "v"}, "custom": {"cls", "v"}}


def _malformed(data: dict[str, Any]) -> str | None:
    kind = data[TAG]
    allowed = _TAG_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is None or "v" not in data or not data.keys() - {TAG} <= allowed:
        return (f"the key {TAG!r} is reserved for tagged values; this one has keys {sorted(data)}, expected "
                f"{TAG!r} (one of {sorted(_TAG_KEYS)}) with {sorted(allowed or {'v'})}")
    return None


def _check_tag(data: dict[str, Any]) -> None:
    problem = _malformed(data)
    if problem:
        raise _Refusal(data, problem)


def _dec_tagged(data: dict[str, Any], where: str) -> Any:
    kind = data[TAG]
    problem = _malformed(data)
    if problem:
        raise UnsupportedValue(where, "", f"tagged value {kind!r}", problem)
    v = data["v"]
    try:
        if kind == "tuple":
            return tuple(_dec(x, where) for x in v)
        if kind == "datetime":
            return _dec_datetime(data)
        if kind == "date":
            return date.fromisoformat(v)
        if kind == "decimal":
            return Decimal(v)
        if kind == "custom":
            entry = _BY_NAME.get(data["cls"])
            if entry is None and ":" in data["cls"]:
                import_class(data["cls"], where=where)  # importing the module may register the type
                entry = _BY_NAME.get(data["cls"])
            if entry is None:
                raise UnsupportedValue(where, "", data["cls"], "no type is registered under this name here; "
                                                             "call register_value_type before reading the run")
            return entry.decode(_dec(v, where))
        cls: Any = import_class(data["cls"], where=where)
        if kind == "enum":
            return cls(_dec(v, where))
        fields = {k: _dec(x, where) for k, x in v.items()}
        if kind == "model":
            extra = {k: _dec(x, where) for k, x in (data.get("extra") or {}).items()}
            chosen = set(data["set"]) if "set" in data else None
            return cls.model_construct(_fields_set=chosen, **fields, **extra)
        obj = cls.__new__(cls)
        for k, x in fields.items():
            object.__setattr__(obj, k, x)
        return obj
    except UnsupportedValue:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ZoneInfoNotFoundError) as exc:
        raise UnsupportedValue(where, "", f"tagged value {kind!r}", f"it cannot be restored: {type(exc).__name__}: {exc}") from None


def _dec_datetime(data: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(data["v"])
    if "tz" in data:
        return value.replace(tzinfo=ZoneInfo(data["tz"]), fold=int(data.get("fold", 0)))
    if "tzname" in data and value.tzinfo is not None:
        return value.replace(tzinfo=timezone(value.utcoffset(), data["tzname"]))  # type: ignore[arg-type]
    return value


def hook_state(state: Any) -> dict[str, Any]:
    """A copy of a checkpointed state with every tagged value decoded: what graph hooks
    (``goal``, ``plan``, ``decision_prompt``, ``render_report``, ...) receive, so they read run
    inputs, tool data and decisions as the types that went in."""
    return dict(decode_value(dict(state), where="state"))


# decision_form / restore_model / validate_edit live in chainproof/_boundaries.py (they apply this
# codec against a pydantic schema) and are re-exported here lazily, which avoids an import cycle.
_SCHEMA_FUNCTIONS = frozenset({"decision_form", "restore_model", "validate_edit"})


def __getattr__(name: str) -> Any:
    if name in _SCHEMA_FUNCTIONS:
        from chainproof import _boundaries

        return getattr(_boundaries, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def error_path(data: Any, root: str = "") -> tuple[str, str] | None:
    """``(key path, type name)`` of the first value in ``data`` outside the contract, or None."""
    try:
        _enc(data)
    except _Refusal as exc:
        return _path(root, exc.parts), exc.type_name
    return None

