"""Approval policy of a graph: when a human must approve, who may, and what a rejection does.

A policy is plain data (pydantic), so it can come from a graph spec
(:meth:`chainproof.graphs.spec.ChainSpec.approval_policy`) or be overridden per graph in settings
(``[approval_policies.GRAPH]`` in ``chainproof.toml``)::

    [approval_policies.due-diligence]
    nodes = ["decide"]
    approvers = ["Dana Approver", "role:credit-committee"]
    on_reject = "end"
    conditions = [{kind = "field_equals", field = "decision", value = "walk_away"},
                  {kind = "field_below", field = "confidence", threshold = 0.5}]

    [approver_roles]
    "Lee Chair" = ["credit-committee"]

Approval is needed when the node is listed in ``nodes`` or any condition holds; the reasons are
shown with the request and kept in the audit trail. The orchestrator has one approval point, the
``decide`` node (the final decision); conditions are evaluated there, over the decision, the tools
the run used and the run's cost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, field_validator

APPROVAL_NODES = ("decide",)
"""Nodes of the orchestrator that can ask for approval (``ApprovalPolicy.nodes`` may name these)."""


class FieldEquals(BaseModel):
    """Holds when the decision's ``field`` equals ``value`` (e.g. ``decision == "walk_away"``)."""

    kind: Literal["field_equals"] = "field_equals"
    field: str
    value: Any

    def reason(self, facts: RunFacts) -> str | None:
        if self.field in facts.decision and facts.decision[self.field] == self.value:
            return f"{self.field} is {self.value!r}"
        return None


class FieldBelow(BaseModel):
    """Holds when the decision's numeric ``field`` is below ``threshold`` (e.g. ``confidence < 0.5``).
    A missing or non-numeric field holds too (fail closed)."""

    kind: Literal["field_below"] = "field_below"
    field: str
    threshold: float

    def reason(self, facts: RunFacts) -> str | None:
        value = facts.decision.get(self.field)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{self.field} is missing or not a number ({value!r}); threshold {self.threshold}"
        return f"{self.field} {value} is below {self.threshold}" if value < self.threshold else None


class SensitiveToolUsed(BaseModel):
    """Holds when the run called a tool marked sensitive: tagged ``"sensitive"`` (LangChain tool
    ``tags``) or named in ``tools``."""

    kind: Literal["sensitive_tool_used"] = "sensitive_tool_used"
    tools: list[str] = Field(default_factory=list)

    def reason(self, facts: RunFacts) -> str | None:
        used = sorted(set(facts.tools_used) & (set(self.tools) | set(facts.sensitive_tools)))
        return f"sensitive tool(s) used: {', '.join(used)}" if used else None


class CostAbove(BaseModel):
    """Holds when the run's cost so far exceeds ``usd`` (USD). When the cost is unknown (no
    prices configured) it holds as well: an unmeasured cost cannot prove it is under the limit."""

    kind: Literal["cost_above"] = "cost_above"
    usd: float = Field(ge=0)

    def reason(self, facts: RunFacts) -> str | None:
        if facts.cost_usd is None:
            return f"run cost is not known, limit {self.usd:.2f} USD"
        return f"run cost {facts.cost_usd:.4f} USD is above {self.usd:.2f} USD" if facts.cost_usd > self.usd else None


Condition = Annotated[Union[FieldEquals, FieldBelow, SensitiveToolUsed, CostAbove], Field(discriminator="kind")]


class RunFacts(BaseModel):
    """What conditions are evaluated over: the proposed decision (JSON), the tools the run called,
    the tools marked sensitive, and the run's cost in USD (None when not tracked)."""

    decision: dict[str, Any]
    tools_used: list[str] = Field(default_factory=list)
    sensitive_tools: list[str] = Field(default_factory=list)
    cost_usd: float | None = None


class ApprovalPolicy(BaseModel):
    """Who must approve what.

    Attributes:
        nodes: approval points that always need approval (``"decide"``; see ``APPROVAL_NODES``).
        conditions: run-time conditions that add an approval when they hold.
        approvers: allowed approvers — names, or ``role:ROLE`` with roles given per name in
            settings (``approver_roles``). Empty: anyone named may decide.
        on_reject: ``"end"`` (the run ends with a rejected report) or ``"replan"`` (back to
            ``plan`` with the reason, then a new decision and a new request).
        max_replans: how many rejections may send the run back to ``plan``; the next ends it.
        require_signature: every approve / reject / edit must carry an Ed25519 signature made
            with a registered key of an allowed approver (``chainproof keys create``,
            ``chainproof approvers add``); the approver is then the key's registered name and
            their roles the registered ones. False here, but a store created with
            ``approvals.require_signature`` (the default for new stores) applies true to every
            policy that is not an admin's stored version (``checkpoints/_policy_store.py``).
    """

    nodes: list[str] = Field(default_factory=lambda: ["decide"])
    conditions: list[Condition] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    on_reject: Literal["end", "replan"] = "end"
    max_replans: int = Field(default=2, ge=0)
    require_signature: bool = False

    @field_validator("nodes")
    @classmethod
    def _known_nodes(cls, nodes: list[str]) -> list[str]:
        unknown = [n for n in nodes if n not in APPROVAL_NODES]
        if unknown:
            raise ValueError(f"nodes: {unknown} cannot ask for approval; approval points are {list(APPROVAL_NODES)}")
        return nodes

    def digest(self) -> str:
        """SHA-256 (hex) of the policy's canonical JSON (sorted keys, no spaces): the hash a run
        and each of its approval requests record, and the stored version's ``policy_hash``."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def reasons(self, node: str, facts: RunFacts) -> list[str]:
        """Why ``node`` needs approval given ``facts`` (empty: it does not)."""
        out = [f"policy: {node} always needs approval"] if node in self.nodes else []
        out += [r for c in self.conditions if (r := c.reason(facts))]
        return out

    def allows(self, approver: str, roles_by_name: Mapping[str, Iterable[str]]) -> bool:
        """True when ``approver`` may decide: no restriction, their name is listed, or one of their
        roles (from ``roles_by_name``) is listed as ``role:ROLE``. Names compare case-insensitively."""
        if not self.approvers:
            return True
        name = approver.strip().casefold()
        names = {a.casefold() for a in self.approvers if not a.startswith("role:")}
        roles = {a.removeprefix("role:").casefold() for a in self.approvers if a.startswith("role:")}
        theirs = {r.casefold() for n, rs in roles_by_name.items() if n.strip().casefold() == name for r in rs}
        return name in names or bool(roles & theirs)
