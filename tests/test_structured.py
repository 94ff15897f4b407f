"""Typed answers from chat models: lenient parsing, feedback on failure, bounded attempts."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.agents.structured import invoke_structured, keyed_instruction, keys_line, schema_instruction


class Pick(BaseModel):
    choice: int


def test_prose_around_json_and_fences_are_accepted():
    model = ScriptedChatModel(replies=['Sure! ```json\n{"choice": 3}\n``` hope that helps'])
    out = invoke_structured(model, [HumanMessage("pick")], Pick, effort="low")
    assert out.value == Pick(choice=3) and len(out.calls) == 1 and out.errors == []


def test_truncated_reply_is_reported_as_cut_off_not_as_a_schema_error():
    cut = AIMessage(content='{"choice": 3, "note": "a very long', response_metadata={"finish_reason": "length"})
    model = ScriptedChatModel(replies=[cut, '{"choice": 4}'])
    out = invoke_structured(model, [HumanMessage("pick")], Pick, effort="low")
    assert out.value == Pick(choice=4)
    assert "cut off at the output-token limit" in out.errors[0]
    assert "cut off" in model.calls[1][-1].content


def test_attempts_are_bounded_and_each_is_recorded():
    model = ScriptedChatModel(replies=["no", '{"choice": "x"}'])
    out = invoke_structured(model, [HumanMessage("pick")], Pick, effort="low", max_attempts=2)
    assert out.value is None and [c.attempts for c in out.calls] == [1, 2]
    assert out.errors[0] == "no JSON object found in the reply" and "choice" in out.errors[1]


class Verdict(BaseModel):
    """For developers: never shown to the model."""

    decision: Literal["go", "stop"] = Field(description="what to do")
    confidence: float = Field(ge=0, le=1)
    evidence: list[Pick] = Field(description="the picks it rests on")


class Node(BaseModel):
    name: str
    children: list[Node] = []


def test_a_schema_the_endpoint_enforces_is_named_by_its_keys_and_every_model_is_asked_the_same():
    """Where the endpoint holds the reply to the schema (the embedded model's grammar) its adapter
    shows the keys with their descriptions, choices, ranges and nested keys (``keyed_instruction``),
    never the developer's docstring; a recursive model is named, not expanded forever. The call
    itself always asks with the whole schema, bound to one or not, so the audit and a replay see
    the same prompt."""
    assert keyed_instruction(Verdict.model_json_schema()) == (
        "Reply with exactly one JSON object and nothing else, with the keys: decision (what to do; one of go, "
        "stop), confidence (0 to 1), evidence {choice} (the picks it rests on).")
    assert keys_line(Node.model_json_schema()) == "name, children {like Node}"
    cycle = {"$defs": {"A": {"properties": {"b": {"$ref": "#/$defs/B"}}}, "B": {"properties": {"a": {"$ref": "#/$defs/A"}}}},
             "$ref": "#/$defs/A"}
    assert keys_line(cycle) == "b {a {like A}}"
    model = ScriptedChatModel(replies=['{"decision": "stop", "confidence": 1, "evidence": []}'], repeat_last=True)
    for each in (model, model.bind(response_format={"type": "json_object", "schema": Verdict.model_json_schema()})):
        invoke_structured(each, [HumanMessage("decide")], Verdict, effort="low")
    assert model.calls[0][0].content == model.calls[1][0].content == schema_instruction(Verdict)
    assert '"enum":["go","stop"]' in model.calls[0][0].content and "For developers" in model.calls[0][0].content
