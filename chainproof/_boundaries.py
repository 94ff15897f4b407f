"""Where the engine applies the value contract (:mod:`chainproof.values`): tool calls, decisions
and approval edits (the decision functions are public as ``chainproof.values.decision_form``,
``restore_model`` and ``validate_edit``).

A tool receives its arguments decoded (the types that went in) and its result is encoded (and so
checked) immediately after it returns, before anything is written.

**A refused result** (a value outside the contract, e.g. a ``Fraction``) must not lose the tool's
side effects nor run the tool twice. The design:

1. ``act`` records the tool call with ``result=None`` and ``error="UnsupportedValue: <tool>: value
   at result.items[2].when has type Fraction, ..."`` (the ``tool_calls`` row names the tool, the key
   path and the type) and completes normally, with the refusal as its outcome
   (``pending["refused"]``). Its checkpoint is written, so the tool never runs again for this step.
2. ``observe`` halts the run before interpreting anything with a typed stop: a LangGraph
   ``interrupt()`` whose payload is :func:`refusal_stop` (``kind="value_refused"``). The runner
   records it as ``run_failed`` (the run is listed as failed) and raises the refusal as
   :class:`~chainproof.errors.UnsupportedValue` (exit 1), naming ``chainproof resume RUN_ID``.
3. ``chainproof resume RUN_ID`` answers the stop; ``observe`` then records the refusal as the plan
   step's finding (no model call; no data is kept) and the chain goes on. A later step that needs
   that finding's data fails with the usual "not kept" error.

A replay serves the recorded refusal (:func:`replayed_refusal`) and answers the
stop wherever the recorded run was resumed past it, so it reproduces the same records.
This follows LangGraph's pattern for human-in-the-loop stops (``interrupt`` + ``Command(resume)``)
and DBOS's rule that a completed step's outcome, success or error, is recorded once and not re-run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from chainproof.errors import InputError, UnsupportedValue
from chainproof.values import TAG, _enc, _Refusal, decode_value, encode_value

REFUSAL_KIND = "value_refused"
"""``kind`` of the interrupt payload that stops a run after a refused tool result."""

_PREFIX = "UnsupportedValue: "
_VERBATIM = {"verbatim": True}
"""The validation context of a person's edit and of a stored decision (``agents.structured.VERBATIM``,
not imported here: that module loads LangChain): text fields are kept as given."""


def invoke_tool(tool: Any, name: str, args: dict[str, Any]) -> tuple[Any, str | None]:
    """Run ``tool.invoke`` with ``args`` (tagged JSON) decoded and return ``(encoded result,
    None)``, or ``(None, error text)`` when the result is outside the value contract. Exceptions
    the tool raises propagate unchanged."""
    decoded = decode_value(args, where=f"tool {name} arguments")
    try:
        return encode_value(tool.invoke(decoded), where=f"tool {name}", root="result"), None
    except UnsupportedValue as exc:
        return None, f"{_PREFIX}{exc}"


INVALID_CALL = "InvalidToolCall: "
"""Prefix of the ``error`` of a ``tool_calls`` row for a call a model asked for that was refused
before the tool ran (unknown tool, arguments not fitting its schema, or not JSON)."""


REJECTED_CALL = "RejectedToolCall: "
"""Prefix of the ``error`` of a ``tool_calls`` row for a call a person rejected at its approval
request (a ``requires_approval`` tool): the tool never ran."""


def is_refused_call(error: str | None) -> bool:
    """Whether a recorded tool call's ``error`` is a call refused before the tool ran (invalid, or
    rejected by a person)."""
    return bool(error) and str(error).startswith((INVALID_CALL, REJECTED_CALL))


def check_call_args(tool: Any, name: str, args: Any) -> str | None:
    """Check the arguments a model gave for ``tool`` against the tool's argument schema (its
    pydantic ``args_schema``, the schema ``bind_tools`` showed the model). Returns None when they
    fit, else one line (prefixed :data:`INVALID_CALL`) naming each bad field and what was
    expected, and every argument the schema does not have (pydantic would drop it silently)."""
    if not isinstance(args, dict):
        return f"{INVALID_CALL}tool {name!r}: the arguments must be a JSON object, got {type(args).__name__}"
    schema = getattr(tool, "args_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None  # a JSON-schema dict or none: the tool's own invoke validates
    fields = set(schema.model_fields) | {f.alias for f in schema.model_fields.values() if f.alias}
    problems = [f"{key}: not an argument of the tool (its arguments: {', '.join(schema.model_fields) or 'none'})"
                for key in args if key not in fields]
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        problems += [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()]
    return f"{INVALID_CALL}arguments of tool {name!r}: " + "; ".join(problems) if problems else None


def invoke_model_call(tool: Any, name: str, args: dict[str, Any]) -> tuple[Any, str | None]:
    """Run ``tool.invoke`` with the arguments a model chose (plain JSON, checked by
    :func:`check_call_args`) and return ``(encoded result, None)``, or ``(None, error text)`` when
    the result is outside the value contract. Unlike :func:`invoke_tool` the arguments are never
    decoded: a model cannot make a tool receive a tagged type (``{"$cp": ...}`` stays a dict)."""
    try:
        return encode_value(tool.invoke(args), where=f"tool {name}", root="result"), None
    except UnsupportedValue as exc:
        return None, f"{_PREFIX}{exc}"


def replayed_refusal(message: str) -> UnsupportedValue:
    """An :class:`UnsupportedValue` whose text is ``message`` (a refusal recorded in a
    ``tool_calls`` row), so a replay records the very same error text."""
    exc = UnsupportedValue.__new__(UnsupportedValue)
    Exception.__init__(exc, message)
    exc.where, exc.path, exc.type_name = "", "", ""
    return exc


def recorded_refusal(error: str | None) -> UnsupportedValue | None:
    """The refusal to raise again in a replay when a recorded tool call's ``error`` is one."""
    if error and error.startswith(_PREFIX):
        return replayed_refusal(error[len(_PREFIX):])
    return None


def refusal_stop(run_id: str, step_no: int, plan_step: str, tool: str | None, error: str) -> dict[str, Any]:
    """The interrupt payload of the stop after a refused tool result (``step_no``: the step the
    refusal's finding will be recorded under)."""
    return {"kind": REFUSAL_KIND, "run_id": run_id, "step_no": step_no, "plan_step": plan_step, "tool": tool,
            "error": error}


def refusal_error(run_id: str, stop: dict[str, Any]) -> UnsupportedValue:
    """The error a run stopped by a refusal ends with (``RunError``, exit 1)."""
    exc = replayed_refusal(stop["error"][len(_PREFIX):] if stop["error"].startswith(_PREFIX) else stop["error"])
    exc.add_note(f"run {run_id} stopped after tool {stop.get('tool')} returned this value; the tool call is "
                 f"recorded and will not run again. Fix the tool for later runs; `chainproof resume {run_id}` "
                 "continues this one with the refusal as the step's finding")
    return exc


# --- decisions and edits: values checked against a pydantic schema ---------------------------


def decision_form(model: BaseModel, *, where: str = "decision") -> dict[str, Any]:
    """The stored form of a decision ``model``: a dict with one entry per field. A field whose
    JSON form (``model_dump(mode="json")``) the model's own schema turns back into exactly the same
    value keeps that JSON form (so plain decisions are stored as before and read as dicts); any
    other field is stored tagged (a ``ZoneInfo`` datetime, a model under ``Any``, a dataclass with
    an ``init=False`` field, ...). :func:`restore_model` gives the model back. Raises
    ``UnsupportedValue`` naming the field for a value outside the contract."""
    cls = type(model)
    exact = {name: encode_value(getattr(model, name), where=where, root=name) for name in cls.model_fields}
    try:
        dumped = model.model_dump(mode="json")
        again = cls.model_validate(dumped)
    except (ValueError, TypeError):  # pydantic cannot dump or re-read it as JSON: keep every field tagged
        dumped, again = {}, None
    out = {}
    for name, enc in exact.items():
        plain = again is not None and name in dumped and _encodes_to(getattr(again, name), enc)
        out[name] = dumped[name] if plain else enc
    for name, value in (model.__pydantic_extra__ or {}).items():
        out[name] = encode_value(value, where=where, root=name)
    return out


def _encodes_to(value: Any, encoded: Any) -> bool:
    try:
        return _enc(value) == encoded
    except _Refusal:
        return False


def restore_model(schema: type[BaseModel], form: dict[str, Any], *, where: str = "decision") -> BaseModel:
    """The ``schema`` instance of a stored :func:`decision_form` (keys starting with ``_``, such as
    the engine's ``_fallback`` / ``_edited_by`` markers, are ignored). Raises pydantic's
    ``ValidationError`` when the form does not fit the schema, ``UnsupportedValue`` when a tagged
    class cannot be imported."""
    values = decode_value({k: v for k, v in form.items() if not k.startswith("_")}, where=where)
    model = schema.model_validate(values, context=_VERBATIM)  # stored text comes back as stored
    for name, value in values.items():  # a tagged field comes back as stored, never re-coerced
        if isinstance(form.get(name), dict) and TAG in form[name] and name in schema.model_fields:
            model.__dict__[name] = value
    return model


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, with types: ``1`` and ``True`` differ, ``1`` and ``1.0`` are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return a == b


def validate_edit(schema: type[BaseModel], edited: dict[str, Any], *, where: str = "edited") -> BaseModel:
    """Validate a person's replacement ``edited`` (plain JSON, tagged JSON or Python values) into
    ``schema`` without silent changes. Each given field must come out as the same type and value,
    or, when it was given as plain JSON (the CLI's ``--set`` / ``--file``), as a value whose JSON
    form is what was given (an ISO string for a ``datetime`` field, ``"high"`` for an enum field).

    Raises ``InputError`` naming ``where.FIELD`` for a key that is not a field (it would be
    dropped), a value the schema would convert (``1`` for a ``bool``, a ``Fraction`` for a
    ``float``, a fixed-offset string where a ``ZoneInfo`` datetime was given), or a value outside
    the contract; pydantic's ``ValidationError`` when the content does not fit the schema."""
    given = decode_value(edited, where=where)
    if not isinstance(given, dict):
        raise InputError(f"{where}: expected a JSON object of {schema.__name__}'s fields, got {type(given).__name__}")
    names: dict[str, str] = {name: name for name in schema.model_fields}
    names.update({f.alias: name for name, f in schema.model_fields.items() if f.alias is not None})
    if schema.model_config.get("extra") != "allow":
        for key in given:
            if key not in names:
                raise InputError(f"{where}.{key}: not a field of {schema.__name__} (fields: "
                                 f"{', '.join(schema.model_fields)}); it would be dropped")
    model = schema.model_validate(given, context=_VERBATIM)  # a person's text is kept as typed (agents/structured.Clip)
    dumped = model.model_dump(mode="json")
    for key, value in given.items():
        name: str = names.get(key) or key
        got = getattr(model, name, value)
        enc_given = encode_value(value, where=where, root=key)
        if encode_value(got, where=where, root=key) == enc_given:
            continue
        if enc_given is value and name in dumped and _same_json(dumped[name], value):
            continue  # plain JSON parsed into the field's type, and it reads back as given
        if type(got) is type(value):  # same type, another value: the schema normalises it
            raise InputError(f"{where}.{key}: {schema.__name__} would change the {type(value).__name__} {value!r} into "
                             f"{got!r}; give the value as the schema keeps it")
        raise InputError(f"{where}.{key}: {schema.__name__} would turn the {type(value).__name__} {value!r} into "
                         f"the {type(got).__name__} {got!r}; give the field's own type ({type(got).__name__})")
    return model
