"""Typed answers from chat models: lenient parsing, feedback on failure, bounded attempts."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

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
