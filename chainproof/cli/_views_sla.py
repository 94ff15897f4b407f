"""The ``chainproof sla`` table (the report: :mod:`chainproof.graphs.sla`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_sla"]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_sla(console: Console, report: Any, since: str) -> None:
    """The ``chainproof sla`` table: one row per endpoint over the window (graphs/sla.py)."""
    table = Table(title=f"Endpoint SLA · last {since}", box=None, pad_edge=False, header_style="bold")
    for name in ("endpoint", "sent", "avail", "p50 s", "p95 s", "429", "failover", "errors"):
        table.add_column(name, no_wrap=name != "errors", overflow="fold",
                         justify="left" if name in ("endpoint", "errors") else "right")
    for e in report.endpoints:
        table.add_row(e.endpoint, str(e.requests), _share(e.availability), _secs(e.p50_s), _secs(e.p95_s),
                      _share(e.rate_limited_share), str(e.failovers),
                      ", ".join(f"{k} {v}" for k, v in sorted(e.errors.items())))
    console.print(table if report.endpoints else f"No model requests recorded in the last {since}.")
    if report.endpoints:
        console.print("sent = requests sent; avail = answered / sent; p50/p95 = response time of answered "
                      "requests (nearest rank); 429 = share of requests rate limited; failover = calls that left "
                      "the endpoint for another", highlight=False)
    if report.short_circuited:
        console.print(f"{report.short_circuited} attempt(s) refused by the circuit breaker (no request sent)",
                      highlight=False)
