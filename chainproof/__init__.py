"""Chainproof: long-chain reasoning agents on LangGraph with goal reviews, effort routing, a
durable human-approval interrupt and a hash-chained, replayable SQL audit trail.

The public API is what ``__all__`` lists; everything else (underscore modules, ``_engine``) is
private and may change. Names load on first use (PEP 562 ``__getattr__``), so ``import chainproof``
and the read-only CLI commands do not pay for LangGraph and LangChain until a graph runs.

Writing a graph (see the README's "Writing a graph")::

    from chainproof import ChainSpec, PlanStep, register, tool

    @tool
    def margin(revenue: float, cost: float) -> dict:
        "Gross margin of revenue and cost."
        return {"margin": (revenue - cost) / revenue}

    class MarginCheck(ChainSpec):
        name = "margin-check"
        ...

    register("margin-check", MarginCheck)      # or the "chainproof.graphs" entry point

Modelled on LangGraph's ``langgraph/graph/__init__.py`` and PydanticAI's ``pydantic_ai/__init__.py``:
one import for the face, ``__all__`` as the contract, errors in one module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> "module:attribute" (the module is imported when the name is first used)
_EXPORTS: dict[str, str] = {
    # the application
    "Chainproof": "chainproof.app:Chainproof",
    "Settings": "chainproof.settings:Settings",
    "RunResult": "chainproof.types:RunResult",
    # what a run reports and why it stops (typed; chainproof.types)
    "Pause": "chainproof.types:Pause",
    "ApprovalPause": "chainproof.types:ApprovalPause",
    "StepBudgetPause": "chainproof.types:StepBudgetPause",
    "CostBudgetPause": "chainproof.types:CostBudgetPause",
    "ValueRefusedPause": "chainproof.types:ValueRefusedPause",
    "ProgressEvent": "chainproof.types:ProgressEvent",
    "StepFinished": "chainproof.types:StepFinished",
    "BudgetAlert": "chainproof.types:BudgetAlert",
    # writing a graph
    "ChainSpec": "chainproof.graphs.spec:ChainSpec",
    "PlanStep": "chainproof.graphs.spec:PlanStep",
    "Finding": "chainproof.graphs.spec:Finding",
    "AgentAnswer": "chainproof.graphs.agent:AgentAnswer",
    "SendBack": "chainproof.graphs.agent:SendBack",
    "Condition": "chainproof.graphs.branching:Condition",
    "BranchChoice": "chainproof.graphs.branching:BranchChoice",
    "BranchOutcome": "chainproof.graphs.branching:BranchOutcome",
    "debate_step": "chainproof.graphs.debate:debate_step",
    "Debate": "chainproof.graphs.debate:Debate",
    "Position": "chainproof.graphs.debate:Position",
    "DebateVerdict": "chainproof.graphs.debate:DebateVerdict",
    "ChainView": "chainproof.graphs.view:ChainView",
    "ApprovalItem": "chainproof.graphs.approval:ApprovalItem",
    "ApprovalPolicy": "chainproof.graphs.approval_policy:ApprovalPolicy",
    "FieldEquals": "chainproof.graphs.approval_policy:FieldEquals",
    "FieldBelow": "chainproof.graphs.approval_policy:FieldBelow",
    "SensitiveToolUsed": "chainproof.graphs.approval_policy:SensitiveToolUsed",
    "CostAbove": "chainproof.graphs.approval_policy:CostAbove",
    "tool": "chainproof.graphs.tool:tool",
    # signed decisions (a decision's statement, signed with the approver's key or by an API client)
    "KeySigner": "chainproof.checkpoints._approver_keys:KeySigner",
    "ClientSignature": "chainproof.checkpoints._approver_keys:ClientSignature",
    "decision_statement": "chainproof.checkpoints._approver_keys:decision_statement",
    # trust for an existing LangGraph graph
    "instrument": "chainproof.graphs.instrument:instrument",
    "InstrumentedGraph": "chainproof.graphs.instrument:InstrumentedGraph",
    "clipped": "chainproof.agents.structured:clipped",
    # the value contract (chainproof.values)
    "register_value_type": "chainproof.values:register_value_type",
    # graph discovery
    "register": "chainproof.graphs.registry:register",
    "get_spec": "chainproof.graphs.registry:get_spec",
    "list_graphs": "chainproof.graphs.registry:list_graphs",
    "GraphInfo": "chainproof.graphs.registry:GraphInfo",
    # models for tests and offline use
    "StaticModels": "chainproof.agents.models:StaticModels",
    "ScriptedChatModel": "chainproof.agents.scripted:ScriptedChatModel",
    # errors (all of chainproof.errors is public too)
    "ChainproofError": "chainproof.errors:ChainproofError",
    "UserError": "chainproof.errors:UserError",
    "RunError": "chainproof.errors:RunError",
}

# literal, so linters and type checkers see the contract; tests/test_public_api.py checks it matches _EXPORTS
__all__ = [
    "__version__",
    "errors",
    "Chainproof",
    "Settings",
    "RunResult",
    "Pause",
    "ApprovalPause",
    "StepBudgetPause",
    "CostBudgetPause",
    "ValueRefusedPause",
    "ProgressEvent",
    "StepFinished",
    "BudgetAlert",
    "ChainSpec",
    "PlanStep",
    "Finding",
    "AgentAnswer",
    "SendBack",
    "Condition",
    "BranchChoice",
    "BranchOutcome",
    "debate_step",
    "Debate",
    "Position",
    "DebateVerdict",
    "ChainView",
    "ApprovalItem",
    "ApprovalPolicy",
    "FieldEquals",
    "FieldBelow",
    "SensitiveToolUsed",
    "CostAbove",
    "tool",
    "KeySigner",
    "ClientSignature",
    "decision_statement",
    "instrument",
    "InstrumentedGraph",
    "clipped",
    "register_value_type",
    "register",
    "get_spec",
    "list_graphs",
    "GraphInfo",
    "StaticModels",
    "ScriptedChatModel",
    "ChainproofError",
    "UserError",
    "RunError",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from chainproof import errors
    from chainproof.agents.models import StaticModels
    from chainproof.agents.scripted import ScriptedChatModel
    from chainproof.agents.structured import clipped
    from chainproof.app import Chainproof
    from chainproof.checkpoints._approver_keys import ClientSignature, KeySigner, decision_statement
    from chainproof.errors import ChainproofError, RunError, UserError
    from chainproof.graphs.agent import AgentAnswer, SendBack
    from chainproof.graphs.approval import ApprovalItem
    from chainproof.graphs.approval_policy import ApprovalPolicy, CostAbove, FieldBelow, FieldEquals, SensitiveToolUsed
    from chainproof.graphs.branching import BranchChoice, BranchOutcome, Condition
    from chainproof.graphs.debate import Debate, DebateVerdict, Position, debate_step
    from chainproof.graphs.instrument import InstrumentedGraph, instrument
    from chainproof.graphs.registry import GraphInfo, get_spec, list_graphs, register
    from chainproof.graphs.spec import ChainSpec, Finding, PlanStep
    from chainproof.graphs.tool import tool
    from chainproof.graphs.view import ChainView
    from chainproof.settings import Settings
    from chainproof.types import (
        ApprovalPause,
        BudgetAlert,
        CostBudgetPause,
        Pause,
        ProgressEvent,
        RunResult,
        StepBudgetPause,
        StepFinished,
        ValueRefusedPause,
    )
    from chainproof.values import register_value_type

    __version__: str


def _version() -> str:
    # importlib.metadata costs ~20 ms at import: read on first use of __version__, not by every CLI command
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chainproof")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if name == "errors":
        return importlib.import_module("chainproof.errors")
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'chainproof' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
