"""Typed answers from chat models: lenient parsing, feedback on failure, bounded attempts."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.agents.structured import invoke_structured


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


def test_a_schema_the_endpoint_enforces_is_named_by_its_keys_not_sent_whole():
    """The embedded model's ``json_chat`` binds the schema as a ``response_format`` (llama.cpp's
    grammar holds the reply to it): the instruction then names the keys with their descriptions,
    choices, ranges and nested keys, not the schema (prompt tokens); any other model gets the
    whole schema, which is all it has to go by."""
    bound = ScriptedChatModel(replies=['{"decision": "go", "confidence": 0.5, "evidence": [{"choice": 1}]}'])
    out = invoke_structured(bound.bind(response_format={"type": "json_object", "schema": Verdict.model_json_schema()}),
                            [HumanMessage("decide")], Verdict, effort="low")
    assert out.value is not None and out.value.decision == "go"
    system = bound.calls[0][0].content
    assert system == ("Reply with exactly one JSON object and nothing else, with the keys: decision (what to do; one "
                      "of go, stop), confidence (0 to 1), evidence {choice} (the picks it rests on).")
    plain = ScriptedChatModel(replies=['{"decision": "stop", "confidence": 1, "evidence": []}'], repeat_last=True)
    for model in (plain, plain.bind(response_format={"type": "json_object"})):  # json mode without a schema
        invoke_structured(model, [HumanMessage("decide")], Verdict, effort="low")
    for call in plain.calls:
        assert '"enum":["go","stop"]' in call[0].content and "For developers" in call[0].content
