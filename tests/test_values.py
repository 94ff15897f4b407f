"""``chainproof.values``: tagged plain JSON that restores each supported kind exactly, refuses the
rest naming where, key path and type, and checks approval edits for silent conversions."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from chainproof.checkpoints.audit_hashing import canonical_json, sha256_hex
from chainproof.errors import ApprovalRefused, UnsupportedValue
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRequest, apply_changes, check_answer
from chainproof.values import decision_form, decode_value, encode_value, restore_model, validate_edit
from testkit.value_graph import BEFORE_DST, SUPPORTED, Level, Opaque, Stamp, sample_stamp, value_of


@pytest.mark.parametrize("kind", sorted(SUPPORTED))
def test_each_supported_kind_round_trips_through_json_text_to_the_same_type_and_value(kind):
    value = value_of(kind)
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert type(back) is type(value)
    assert encode_value(back) == encode_value(value)
    if kind == "dataclass":
        assert back.label == "set after init"  # an init=False field


def test_new_york_datetime_keeps_its_zone_so_24_hours_cross_the_dst_change_correctly():
    back = decode_value(json.loads(json.dumps(encode_value(BEFORE_DST))))
    assert back.tzinfo.key == "America/New_York"
    assert (back + timedelta(hours=24)).isoformat() == "2018-03-11T12:00:00-04:00"


def test_plain_json_encodes_to_itself_so_existing_hashes_stay_the_same():
    plain = {"a": [1, 2.5, None, True, {"b": "c"}]}
    assert encode_value(plain) is plain and decode_value(plain) is plain
    assert canonical_json(plain) == '{"a":[1,2.5,null,true,{"b":"c"}]}'


@pytest.mark.parametrize("value,type_name", [(Fraction(1, 3), "Fraction"), (range(3), "range"), (Opaque(), "Opaque"),
                                             (object(), "object"), ({1: "int key"}, "int")])
def test_a_refused_value_names_where_the_key_path_and_the_type(value, type_name):
    with pytest.raises(UnsupportedValue) as caught:
        encode_value({"items": [0, 1, {"when": value}]}, where="tool make", root="result")
    assert str(caught.value).startswith(f"tool make: value at result.items[2].when has type {type_name}")


def test_the_audit_hash_names_the_key_path_and_type_instead_of_not_canonicalisable():
    with pytest.raises(UnsupportedValue, match=r"audit record: value at a\[1\]\.b has type Fraction"):
        sha256_hex({"a": [0, {"b": Fraction(1, 2)}]})
    assert sha256_hex({"level": Level.HIGH}) == sha256_hex({"level": encode_value(Level.HIGH)})


def test_a_class_that_cannot_be_imported_is_a_clear_error_not_a_dict():
    tagged = {"$cp": "enum", "cls": "no_such_module_xyz:Level", "v": "high"}
    with pytest.raises(UnsupportedValue, match="no_such_module_xyz:Level.*cannot be imported"):
        decode_value({"x": tagged}, where="decision")


def test_a_decision_is_stored_as_json_where_the_schema_restores_it_and_restored_exactly():
    stamp = sample_stamp()
    form = decision_form(stamp)
    assert form["note"] == "from the tool data" and form["day"] == "2018-03-11"  # the schema restores these exactly
    assert form["when"]["tz"] == "America/New_York"  # a fixed offset would lose the zone: kept tagged
    assert encode_value(restore_model(Stamp, json.loads(json.dumps(form)))) == encode_value(stamp)


def _request() -> ApprovalRequest:
    proposed = decision_form(sample_stamp())
    return ApprovalRequest(request_id="r1", run_id="run", node="approve", question="ok?", proposed=proposed,
                           proposed_hash=sha256_hex(proposed), created_at=BEFORE_DST)


def _edit(edited) -> ApprovalAnswer:
    answer = ApprovalAnswer(request_id="r1", action="edit", approver="Ana", edited=edited)
    return check_answer(answer, _request(), Stamp)


def test_an_edit_of_one_field_keeps_every_other_field_exactly():
    answer = _edit(apply_changes(_request().proposed, ['note="changed"', 'level="low"']))
    edited = restore_model(Stamp, answer.edited)
    assert edited.note == "changed" and edited.level is Level.LOW
    assert edited.when.tzinfo.key == "America/New_York" and edited.box.label == "set after init"


@pytest.mark.parametrize("change,field", [
    ({"surprise": 1}, "edited.surprise: not a field of Stamp"),          # would be dropped
    ({"amount": 0.1}, "edited.amount: Stamp would turn the float"),      # float -> Decimal
    ({"anything": Fraction(1, 10)}, "value at anything has type Fraction"),  # outside the contract
])
def test_an_edit_that_would_drop_or_convert_a_field_is_refused_naming_it(change, field):
    with pytest.raises(ApprovalRefused, match=field.replace(".", r"\.").replace("(", r"\(")):
        _edit({**_request().proposed, **change})


def test_validate_edit_accepts_python_values_of_the_fields_own_types():
    model = validate_edit(Stamp, {**decision_form(sample_stamp()), "amount": Decimal("2.50")})
    assert model.amount == Decimal("2.50") and str(model.amount) == "2.50"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 2**63, -(2**63) - 1])
def test_values_no_store_keeps_exactly_are_refused(value):
    with pytest.raises(UnsupportedValue, match=r"tool t: value at result\.x has type (float|int)"):
        encode_value({"x": value}, where="tool t", root="result")
    assert encode_value({"x": 2**63 - 1}) == {"x": 2**63 - 1}


def test_a_multi_line_edit_of_a_model_written_text_field_is_kept_as_typed():
    """A Clip field (model-written: its white space is folded) edited by a person: a multi-line
    summary is accepted and kept, line breaks included, through the decision's storing and
    restoring; one over the limit is refused naming the limit; a model's text is still folded."""
    from typing import Annotated

    from pydantic import BaseModel, ValidationError

    from chainproof._boundaries import _VERBATIM
    from chainproof.agents.structured import VERBATIM, Clip

    class Review(BaseModel):
        summary: Annotated[str, Clip(60, "two or three sentences")]

    text = "First line of the summary.\nSecond line."
    edited = validate_edit(Review, {"summary": text})
    assert edited.summary == text
    stored = decision_form(edited, where="edited")
    assert restore_model(Review, json.loads(json.dumps(stored))).summary == text
    with pytest.raises(ValidationError, match="expected at most 60 characters, got 61"):
        validate_edit(Review, {"summary": "x" * 61})
    assert Review.model_validate({"summary": "a\n  b"}).summary == "a b"  # a model's output: folded as before
    assert _VERBATIM == {VERBATIM: True}
