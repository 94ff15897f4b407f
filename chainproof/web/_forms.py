"""HTML form fields generated from a pydantic JSON schema, and the posted text read back as values.

Used by the new-run page (a graph's ``inputs_model``) and the approval edit page (a request's
``approval_schema``). A field's widget follows its schema type: ``string`` a text box (``date``
/ ``date-time`` formats a date box / text box), ``integer`` / ``number`` a number box,
``boolean`` a checkbox, an ``enum`` (or a ``Literal``) a select; anything else (arrays, objects,
unions of several types) a text area holding JSON. ``Optional[X]`` (``anyOf`` with ``null``) is X,
not required.

Reading back never guesses silently: a value that does not parse as its type (``"seven"`` for an
integer, bad JSON) is passed on as the text typed, so the schema's validation refuses it naming
the field; an empty optional field is left out (the model's default applies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FormField:
    """One input: ``name`` (the field), ``widget`` (text, date, number, checkbox, select, json),
    ``label`` (the schema's title), ``help`` (its description), ``required``, ``options`` (a
    select's values), ``step`` (``1`` for integers, ``any`` for numbers), ``value`` (the text shown)."""

    name: str
    widget: str
    label: str
    help: str = ""
    required: bool = False
    options: list[str] = field(default_factory=list)
    step: str = ""
    value: str = ""
    checked: bool = False


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``prop`` with a ``$ref`` followed and an ``anyOf [X, null]`` collapsed to X; and whether null is allowed."""
    nullable = False
    if "anyOf" in prop:
        options = [p for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = len(options) < len(prop["anyOf"])
        if len(options) == 1:
            prop = {**prop, **options[0]}
            prop.pop("anyOf", None)
    if "$ref" in prop:
        prop = {**defs.get(prop["$ref"].rsplit("/", 1)[-1], {}), **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop, nullable


def _widget(prop: dict[str, Any]) -> tuple[str, str]:
    kind = prop.get("type")
    if "enum" in prop or "const" in prop:
        return "select", ""
    if kind == "string":
        return ("date", "") if prop.get("format") == "date" else ("text", "")
    if kind == "integer":
        return "number", "1"
    if kind == "number":
        return "number", "any"
    if kind == "boolean":
        return "checkbox", ""
    return "json", ""


def _shown(value: Any, widget: str) -> str:
    if value is None:
        return ""
    if widget == "json" or not isinstance(value, str | int | float | bool):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def form_fields(schema: dict[str, Any], values: dict[str, Any] | None = None) -> list[FormField]:
    """The inputs of ``schema`` (a pydantic ``model_json_schema()``), in field order, showing
    ``values`` (field -> value; default: the schema's defaults)."""
    values = values or {}
    defs, required = schema.get("$defs", {}), set(schema.get("required", []))
    out = []
    for name, raw in schema.get("properties", {}).items():
        prop, nullable = _resolve(raw, defs)
        widget, step = _widget(prop)
        value = values.get(name, prop.get("default"))
        options = [str(o) for o in prop.get("enum", [prop["const"]] if "const" in prop else [])]
        out.append(FormField(name=name, widget=widget, label=prop.get("title", name), help=prop.get("description", ""),
                             required=name in required and not nullable, options=options, step=step,
                             value=_shown(value, widget), checked=value is True))
    return out


def _typed(text: str, prop: dict[str, Any], was: Any) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "string" or isinstance(was, str):
            return text
        if "enum" in prop and all(isinstance(o, str) for o in prop["enum"]):
            return text
        return json.loads(text)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return text  # the schema's validation names the field


def read_form(schema: dict[str, Any], posted: dict[str, str], before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values of ``schema``'s fields in ``posted`` (the form's text; an unchecked checkbox is
    absent, so False). ``before``: the values the form showed; a field's type falls back to the
    type of its value there when the schema leaves it open. Empty optional fields are left out."""
    before = before or {}
    defs, required = schema.get("$defs", {}), set(schema.get("required", []))
    out: dict[str, Any] = {}
    for name, raw in schema.get("properties", {}).items():
        prop, nullable = _resolve(raw, defs)
        if _widget(prop)[0] == "checkbox":
            out[name] = posted.get(name) in ("on", "true", "1")
            continue
        text = posted.get(name, "")
        if text == "":
            if name not in before and name not in required:
                continue  # the model's default applies
            if nullable:
                out[name] = None
                continue
        out[name] = _typed(text, prop, before.get(name))
    return out


def schema_of_values(values: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema for a proposal without a pydantic schema (an approval subject whose edits
    are plain JSON objects): strings as text, other values as JSON, every field required."""
    props = {k: ({"type": "string"} if isinstance(v, str) else {}) for k, v in values.items()}
    return {"properties": props, "required": list(values)}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field comparison: ``[{field, before, after, changed}]`` over both dicts' keys, in
    ``before``'s order then new keys."""
    names = list(before) + [k for k in after if k not in before]
    return [{"field": k, "before": before.get(k), "after": after.get(k), "changed": before.get(k) != after.get(k)}
            for k in names]


__all__ = ["FormField", "diff", "form_fields", "read_form", "schema_of_values"]
