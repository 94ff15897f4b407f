"""Typed answers from any chat model: ask for JSON, parse leniently, retry with the error shown.

This works the same on OpenAI, OpenAI-compatible servers (which often lack ``json_schema``
response formats) and the embedded model, unlike ``with_structured_output``. The pattern
(validation error fed back to the model, bounded attempts) is the one LangChain's
``OutputFixingParser`` and PydanticAI's output retries use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from annotated_types import GroupedMetadata
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from pydantic import AfterValidator, BaseModel, Field, ValidationError, ValidationInfo

from chainproof.agents.calls import ModelCall, call_model
from chainproof.agents.toolcall_parsing import extract_json_object
from chainproof.errors import StructuredOutputError

T = TypeVar("T", bound=BaseModel)
MAX_ATTEMPTS = 3
"""Default number of calls :func:`invoke_structured` makes for one answer (the first and two
retries with the error shown)."""


VERBATIM = "verbatim"
"""Validation context key (``model_validate(…, context={VERBATIM: True})``): text fields are kept
as given (see :class:`Clip`)."""


@dataclass(frozen=True)
class Clip(GroupedMetadata):
    """``Annotated[str, Clip(limit, description, min_length)]``: a model-written text field of at
    most ``limit`` characters, written so type checkers see a ``str`` (see :func:`clipped`). The
    limit is in the JSON schema the model sees (llama.cpp turns ``maxLength`` into its grammar);
    over-long text from other endpoints is cut with an ellipsis rather than rejected (small models
    overrun length hints; the raw output stays in the audit trail). White space is folded.

    Validated with the context ``{VERBATIM: True}`` (a person's edit, ``validate_edit``, and its
    restoring, ``restore_model``) the text is kept as given, line breaks included, and one over
    ``limit`` is refused naming the limit: nothing a person typed is changed silently."""

    limit: int
    description: str
    min_length: int = 1

    def __iter__(self) -> Iterator[Any]:  # pydantic expands grouped metadata into these two
        limit = self.limit

        def clip(text: str, info: ValidationInfo) -> str:
            if isinstance(info.context, dict) and info.context.get(VERBATIM):
                if len(text) > limit:
                    raise ValueError(f"expected at most {limit} characters, got {len(text)}")
                return text
            text = " ".join(text.split())
            return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

        yield Field(min_length=self.min_length, description=self.description, json_schema_extra={"maxLength": limit})
        yield AfterValidator(clip)


def clipped(limit: int, description: str, min_length: int = 1) -> Any:
    """Type of a model-written text field of at most ``limit`` characters:
    ``Annotated[str, Clip(limit, description, min_length)]`` (see :class:`Clip`). Used as an
    annotation call (``text: clipped(300, "...")``) it works at run time, but a type checker
    rejects a call as a type; write ``Annotated[str, Clip(...)]`` where the code is type-checked."""
    return Annotated[str, Clip(limit, description, min_length)]


class StructuredOutcome(BaseModel, Generic[T]):
    """Result of :func:`invoke_structured`: ``value`` is ``None`` when every attempt failed;
    ``calls`` holds one :class:`ModelCall` per attempt and ``errors`` one message per failure."""

    value: T | None = None
    calls: list[ModelCall] = []
    errors: list[str] = []

    def require(self, schema: type[BaseModel]) -> T:
        """``value``, or :class:`StructuredOutputError` when every attempt was invalid."""
        if self.value is None:
            last = self.errors[-1] if self.errors else "no attempt made"
            raise StructuredOutputError(
                f"no answer valid for {schema.__name__} after {len(self.calls)} attempt(s), each shown the "
                f"previous error; last error: {last}")
        return self.value


SCHEMA_INSTRUCTION = "Reply with exactly one JSON object and nothing else. It must validate against this JSON schema:\n"
"""How :func:`schema_instruction` begins (the embedded model's adapter recognises it by this)."""


@functools.lru_cache(maxsize=128)
def schema_instruction(schema: type[BaseModel]) -> str:
    """The system instruction that asks for one JSON object matching ``schema`` (built once per
    schema class: ``model_json_schema`` costs more than the rest of a scripted review call). An
    endpoint that enforces the schema itself is shown :func:`keyed_instruction` in its place by
    its adapter (the embedded model: :func:`chainproof.agents.llama_messages.with_keyed_schema`),
    so the recorded prompt, and its replay, are the same whichever model answers."""
    return SCHEMA_INSTRUCTION + json.dumps(schema.model_json_schema(), separators=(",", ":"))


def keyed_instruction(schema: dict[str, Any]) -> str:
    """The instruction for an endpoint that holds the reply to the JSON ``schema`` itself (llama.cpp
    compiles a ``response_format`` schema to a grammar, so the reply has its keys, types and limits
    whatever the prompt says): the keys with their descriptions and choices (:func:`keys_line`),
    not the schema, as OpenAI's structured outputs send the schema beside the prompt rather than in
    it. For filing-qa's ``FilingAnswer`` on the embedded model: 52 prompt tokens instead of 238
    (measured with the GGUF's tokenizer)."""
    keys = keys_line(schema)
    return "Reply with exactly one JSON object and nothing else" + (f", with the keys: {keys}." if keys else ".")


def keys_line(schema: dict[str, Any]) -> str:
    """The keys of a JSON ``schema``'s object, each with its description, choices (``enum``,
    ``Literal``), range (``minimum`` to ``maximum``) and nested keys in braces: ``action (one of
    continue, replan), evidence {section, paragraph}``. ``$ref``s resolve against the schema's
    ``$defs``; a model met again inside itself (a recursive schema) is named, not expanded."""
    defs = schema.get("$defs", {})

    def resolved(part: dict[str, Any], seen: frozenset[str]) -> tuple[dict[str, Any], frozenset[str], str | None]:
        while isinstance(part, dict) and "$ref" in part:
            name = str(part["$ref"]).rsplit("/", 1)[-1]
            if name in seen:
                return {}, seen, name
            seen, part = seen | {name}, defs.get(name, {})
        return (part if isinstance(part, dict) else {}), seen, None

    def described(name: str, part: dict[str, Any], seen: frozenset[str]) -> str:
        notes = [str(part.get("description") or "").strip()]  # the field's own (a class's docstring is for developers)
        part, seen, again = resolved(part, seen)
        options = [resolved(o, seen)[0] for o in part.get("anyOf", [])]
        inner = next((o for o in options if o.get("type") != "null"), part) if options else part
        if inner.get("type") == "array":
            inner, seen, again = resolved(inner.get("items", {}), seen)
        if "enum" in inner:
            notes.append("one of " + ", ".join(str(v) for v in inner["enum"]))
        if "minimum" in inner and "maximum" in inner:
            notes.append(f"{inner['minimum']:g} to {inner['maximum']:g}")
        nested = f" {{{keys_of(inner, seen)}}}" if inner.get("properties") else f" {{like {again}}}" if again else ""
        text = "; ".join(" ".join(n.split()) for n in notes if n)
        return f"{name}{nested}" + (f" ({text})" if text else "")

    def keys_of(part: dict[str, Any], seen: frozenset[str]) -> str:
        return ", ".join(described(name, sub, seen) for name, sub in part.get("properties", {}).items())

    top, seen, _ = resolved(schema, frozenset())
    return keys_of(top, seen)


def parse_structured(text: str, schema: type[T], validate: Callable[[T], None] | None = None) -> T:
    """Parse ``text`` into ``schema``; raises ``ValueError`` with a message fit to show the model."""
    data = extract_json_object(text)
    if data is None:
        raise ValueError("no JSON object found in the reply")
    try:
        value = schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"the JSON does not match the schema: {problems}") from None
    if validate is not None:
        validate(value)
    return value


def invoke_structured(
    model: BaseChatModel | Runnable,
    messages: list[BaseMessage],
    schema: type[T],
    *,
    effort: str,
    max_attempts: int = MAX_ATTEMPTS,
    validate: Callable[[T], None] | None = None,
    call: Callable[..., tuple[AIMessage, ModelCall]] = call_model,
    accept: Callable[[BaseChatModel | Runnable, list[BaseMessage], ModelCall], None] | None = None,
) -> StructuredOutcome[T]:
    """Ask ``model`` for a ``schema`` object, up to ``max_attempts`` calls.

    ``validate`` may raise ``ValueError`` for semantic checks beyond the schema (for example
    evidence keys that must exist); its message is shown to the model on the next attempt.
    ``call(model, messages, effort=...)`` makes each call (default :func:`call_model`; the
    orchestrator passes one that goes through the reasoning cache); ``accept(model, messages,
    call)`` is told of the one valid answer (the orchestrator caches only valid answers, so a
    re-run after invalid answers asks the model again rather than replaying them).
    Model exceptions (network, rate limits) propagate; only invalid answers are retried here.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    outcome: StructuredOutcome[T] = StructuredOutcome()
    convo: list[BaseMessage] = [SystemMessage(schema_instruction(schema)), *messages]
    for attempt in range(1, max_attempts + 1):
        reply, record = call(model, convo, effort=effort)
        record.attempts = attempt
        outcome.calls.append(record)
        try:
            if record.finish_reason == "length":
                raise ValueError("the reply was cut off at the output-token limit; give a shorter JSON object")
            outcome.value = parse_structured(record.output, schema, validate)
            if accept is not None:
                accept(model, convo, record)
            return outcome
        except ValueError as exc:
            outcome.errors.append(str(exc))
            convo = [
                *convo,
                AIMessage(content=record.output),
                HumanMessage(
                    f"That reply was not valid: {exc}. Answer again with only the corrected JSON object."
                ),
            ]
    return outcome
