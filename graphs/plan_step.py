"""A plan's steps and what they establish: :class:`PlanStep` (tool, reason, agent or debate) and
:class:`Finding`. A :class:`~chainproof.graphs.spec.ChainSpec`'s ``plan`` returns the steps; the
engine (``graphs/_engine/``) runs them and records a finding per step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_serializer, model_validator

from chainproof.agents.config import Effort
from chainproof.graphs.branching import Condition
from chainproof.graphs.debate import Debate

__all__ = ["Finding", "PlanStep"]


class PlanStep(BaseModel):
    """One step of a plan.

    ``kind='tool'``: ``act`` calls ``tool`` with ``args`` (strings of the form ``{inputs.KEY}`` are
    replaced by the run's inputs) plus, for each ``name -> step_id`` in ``args_from_findings``, the
    data of that earlier finding; ``observe`` then asks the model to interpret the result.
    ``kind='reason'``: ``act`` asks the model ``instruction`` over the findings so far.
    ``args_from_summaries`` (``name -> step_id`` or ``name -> [step_id, ...]``) passes the summary
    (the model's interpretation, text) of earlier findings, one string or a list of strings: a
    *reduce* tool step over the readings of several *map* steps (give those steps ``keep_data``
    so their findings stay in state).
    ``keep_data`` keeps the full result in the graph state for later steps; otherwise only the
    finding's summary stays in state (the full result is always in the audit store).
    ``prompt_fields`` limits which top-level fields of a tool result the model is shown (None: all);
    small models read fewer tokens faster and are less tempted by fields such as thresholds.
    ``effort`` is the step's static effort; None lets the routing policy decide from
    ``instruction`` (rules, then a complexity score; ``graphs/routing.py``).
    ``interpret`` (tool steps): False skips the model's interpretation; the finding's summary is
    then built by code (:meth:`ChainSpec.summarize_result`, by default the result as compact JSON)
    and no model is called.

    ``kind='agent'`` (ReAct, as LangGraph's prebuilt ``create_react_agent`` and LangChain's agent
    executor): the model, with ``tools`` bound by their JSON schemas (LangChain ``bind_tools``;
    None binds every tool of the spec), chooses tools and arguments until it answers with text or
    reaches ``max_iterations`` (None: ``ChainSpec.max_iterations``, 30 by default; one iteration
    = one model call plus the tool calls it asked for, one audited super-step, and one unit of the
    run's step budget). Arguments are checked against the tool's schema; an invalid call is shown
    back to the model at most ``max_invalid_calls`` times in the step (the next one ends it).
    ``review_every`` is N of the goal review every N iterations of this step (None: the run's
    ``review_every``; 0: never). ``tool_args`` (``tool name -> {argument: value}``, values may be
    ``{inputs.KEY}``) fixes arguments of the agent's tools that the model neither sees nor may set:
    declare them ``Annotated[T, InjectedToolArg]`` in the tool (LangChain's injected arguments,
    left out of the schema ``bind_tools`` shows); they are merged over the model's arguments
    before the call is checked, held for approval, run and recorded. ``first_tool_choice``
    (OpenAI's ``tool_choice``, sent with ``bind_tools`` on the step's first iteration only):
    ``"auto"`` (the default: the model may answer at once), ``"required"`` (its first reply must
    call one of the tools; LangChain/LangGraph spell it ``"any"``), ``"none"`` (it may not call a
    tool: an answer from the prompt's evidence first; with the embedded model the tools are then
    not shown and cost no prompt tokens, while OpenAI's API still counts them) or the name of one
    of the step's tools (that tool must be called, OpenAI's ``{"type": "function", ...}``); from
    the second iteration on, the model chooses freely. A tool made with ``return_direct=True``
    (LangChain's flag, as LangGraph's ``create_react_agent`` honours it) ends the step when a call
    of it runs without error: its result is the step's answer (stop reason ``returned``). ``answer_checks``: times an answer may
    be sent back by :meth:`ChainSpec.check_answer` (0: never asked). See ``graphs/agent.py``.

    ``depends_on`` (tool and reason steps): the ids of the earlier plan steps this step needs.
    None (the default) means every earlier step, so a plan runs in order as written. Consecutive
    steps that each declare ``depends_on`` and need none of each other form a parallel group: they
    run concurrently (one LangGraph ``Send`` per step, ``graphs/_engine/nodes/parallel.py``). Every
    ``args_from_findings`` source must be listed. Agent steps always run on their own.

    ``when`` (any kind): a typed :class:`~chainproof.graphs.branching.Condition` on an earlier
    finding; the step runs only when it holds (else it is skipped), and the path taken, the values
    read and why are recorded as a ``condition`` step (``graphs/branching.py``). The spec may
    override the choice (:meth:`ChainSpec.choose_branch`). A conditioned step never joins a
    parallel group it does not start.

    ``evidence``: ids of earlier findings whose summary and kept data (their figures exactly as
    recorded, each cited ``[id, step N]``) the step's prompt shows in full, within
    ``ChainSpec.evidence_tokens``; None: its ``depends_on``. Not only the rolling summary: a later
    step reads the evidence it depends on itself (the sources need ``keep_data=True``).

    ``kind="debate"`` (made by :func:`chainproof.graphs.debate.debate_step`): analysts argue
    ``instruction`` (the question) from ``debate.positions`` for ``debate.rounds`` rounds, then a
    judge gives a verdict citing the arguments (``graphs/debate.py``). It runs on its own, not in
    a parallel group; each round counts one unit of the step budget, as an agent iteration.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    kind: Literal["tool", "reason", "agent", "debate"]
    instruction: str
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    args_from_findings: dict[str, str] = Field(default_factory=dict)
    args_from_summaries: dict[str, str | list[str]] = Field(default_factory=dict)
    effort: Effort | None = None
    keep_data: bool = False
    prompt_fields: list[str] | None = None
    interpret: bool = True
    tools: list[str] | None = None
    max_iterations: int | None = Field(default=None, ge=1)
    max_invalid_calls: int = Field(default=3, ge=0)
    review_every: int | None = Field(default=None, ge=0)
    tool_args: dict[str, dict[str, Any]] = Field(default_factory=dict)
    first_tool_choice: str = Field(default="auto", min_length=1)
    answer_checks: int = Field(default=2, ge=0)
    depends_on: list[str] | None = None
    when: Condition | None = None
    evidence: list[str] | None = None
    debate: Debate | None = None

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> PlanStep:
        if self.depends_on is not None:
            if self.kind in ("agent", "debate"):
                raise ValueError(f"plan step {self.id!r}: depends_on applies to tool and reason steps; an agent "
                                 "step runs on its own")
            missing = sorted(set(self.args_from_findings.values()) - set(self.depends_on))
            if missing:
                raise ValueError(f"plan step {self.id!r}: depends_on must list every args_from_findings source; "
                                 f"missing {missing}")
        if self.when is not None and self.when.finding == self.id:
            raise ValueError(f"plan step {self.id!r}: when.finding names the step itself; name an earlier step")
        if (self.kind == "debate") != (self.debate is not None):
            raise ValueError(f"plan step {self.id!r}: a debate step needs debate=Debate(...) and only a debate step "
                             "has one (use graphs.debate.debate_step)")
        if self.kind == "agent" and self.tool is not None:
            raise ValueError(f"plan step {self.id!r}: an agent step chooses its tools; give tools=[...], not tool=")
        if self.tool_args and self.kind != "agent":
            raise ValueError(f"plan step {self.id!r}: tool_args applies to agent steps; a tool step gives args=")
        if self.first_tool_choice != "auto" and self.kind != "agent":
            raise ValueError(f"plan step {self.id!r}: first_tool_choice applies to agent steps, which bind tools")
        if self.first_tool_choice == "any" or (self.first_tool_choice not in ("auto", "required", "none")
                                               and self.tools is not None and self.first_tool_choice not in self.tools):
            raise ValueError(f"plan step {self.id!r}: first_tool_choice: expected 'auto', 'required', 'none' or one of "
                             f"the step's tools {self.tools}, got {self.first_tool_choice!r}")
        if self.kind != "tool" and not self.interpret:
            raise ValueError(f"plan step {self.id!r}: interpret=False applies to tool steps only")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_agent_fields(self, handler: Any) -> dict[str, Any]:
        # a plan step dumps exactly as before these fields existed unless it sets them (recorded
        # plans, and so replays of runs recorded earlier, stay identical)
        data = handler(self)
        for name, default in _LATER_DEFAULTS.items():
            if name in data and data[name] == default:
                del data[name]
        return data


_LATER_DEFAULTS: dict[str, Any] = {"args_from_summaries": {}, "interpret": True, "tools": None, "max_iterations": None,
                                   "max_invalid_calls": 3, "review_every": None, "depends_on": None, "when": None,
                                   "evidence": None, "debate": None, "tool_args": {},
                                   "first_tool_choice": "auto", "answer_checks": 2}


class Finding(BaseModel):
    """What a plan step established: ``summary`` is the model's short interpretation (text),
    ``data`` the tool's result (JSON) when kept, ``step_no`` the super-step that produced it."""

    step_id: str
    title: str
    summary: str
    data: dict[str, Any] | None = None
    tool: str | None = None
    step_no: int
