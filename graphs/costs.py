"""Cost reports: tokens and USD by node and effort, for one run or a department's month.

Built from the audit store's ``model_calls`` rows (the record, not estimates). Tokens used exclude
reasoning-cache hits, whose tokens are shown as *saved*; ``reasoning_tokens`` are part of
``output_tokens`` and shown separately, never added; ``usd`` is None (unknown) when any call in the
group has no price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chainproof.agents.pricing import sum_costs
from chainproof.checkpoints.audit_read import AuditReader, Record


@dataclass
class CostRow:
    """Totals of one (node, effort) group, or of everything (``node="total"``). Tokens in tokens,
    ``usd`` in USD (None: unknown)."""

    node: str
    effort: str
    calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    saved_tokens: int = 0
    costs: list[float | None] = field(default_factory=list, repr=False)

    @property
    def usd(self) -> float | None:
        return sum_costs(self.costs)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, call: Record) -> None:
        self.calls += 1
        self.costs.append(call.cost_usd)
        if call.cache_hit:
            self.cache_hits += 1
            self.saved_tokens += call.input_tokens + call.output_tokens
            return
        self.input_tokens += call.input_tokens
        self.cached_input_tokens += call.cached_input_tokens
        self.output_tokens += call.output_tokens
        self.reasoning_tokens += call.reasoning_tokens

    def as_dict(self) -> dict[str, object]:
        return {"node": self.node, "effort": self.effort, "calls": self.calls, "cache_hits": self.cache_hits,
                "input_tokens": self.input_tokens, "cached_input_tokens": self.cached_input_tokens,
                "output_tokens": self.output_tokens, "reasoning_tokens": self.reasoning_tokens,
                "total_tokens": self.total_tokens, "saved_tokens": self.saved_tokens, "usd": self.usd}


def cost_rows(calls: list[Record]) -> tuple[list[CostRow], CostRow]:
    """Group ``calls`` by (node, effort) in order of first appearance; returns the rows and the total."""
    rows: dict[tuple[str, str], CostRow] = {}
    total = CostRow("total", "")
    for call in calls:
        rows.setdefault((call.node, call.effort), CostRow(call.node, call.effort)).add(call)
        total.add(call)
    return list(rows.values()), total


def cost_report(audit: AuditReader, *, run_id: str | None = None, department: str | None = None,
                month: str | None = None) -> tuple[list[CostRow], CostRow]:
    """:func:`cost_rows` of one run's calls, or of a department's calls in a month (``YYYY-MM``).
    Raises ``ValueError`` naming the argument missing or malformed."""
    if run_id is None and (department is None or month is None):
        raise ValueError("costs: give a RUN_ID, or --department NAME and --month YYYY-MM")
    return cost_rows(audit.model_calls_of(run_id=run_id, department=department, month=month))
