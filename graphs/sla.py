"""Endpoint SLA: availability, response time and 429 share of each model endpoint, from the record.

Built from the HTTP attempts the audit store already holds (every step row's
``output["model_attempts"]``, one :class:`chainproof.agents.resilience.AttemptRecord` per request,
written by ``graphs/recorder.py``), over a window of time ending now: no extra table, no probe
requests. An attempt is dated by its step row's ``created_at`` (the audit write, UTC), since
attempts carry no time of their own; days are UTC calendar days.

The figures, per endpoint (the attempt's ``endpoint`` name, e.g. ``primary``), follow the Google
SRE Workbook's request-based SLIs ("Implementing SLOs": *good events / valid events*), the
definition the issue's anchors leave open (LangSmith's monitoring charts show the same kind of
success rate and latency percentiles per run, not per endpoint):

* ``requests``: attempts sent to the endpoint. Attempts refused by the client's circuit breaker
  (``kind="circuit_open"``, endpoint ``-``) sent nothing and belong to no endpoint; they are
  counted apart as ``short_circuited``.
* ``ok``: requests that returned an answer (``error_class`` is None).
* ``availability`` = ok / requests (0..1). Everything else counts as *not available*: 429 (rate
  limited), 5xx and 408, timeouts, connection errors, malformed answers — the caller got no
  answer from this endpoint, whoever was at fault. None when there were no requests.
* ``rate_limited_share`` = requests answered 429 (``status_code`` 429 or ``kind="rate_limited"``)
  / requests (0..1), so a low availability caused by the caller's own rate shows as such.
* ``p50_s`` / ``p95_s``: response time in seconds of the *successful* requests (``latency_s``,
  the request's wall time, without the client-side limiter's queue and the back-off wait), by
  the nearest-rank method (the smallest recorded value with at least p % of the values at or
  below it; no interpolation, so every figure is a time that was measured). Failed requests are
  left out as the SRE Workbook's latency SLI does: a fast error must not flatter the latency.
  None when nothing succeeded.
* ``failovers``: calls that left this endpoint for another (an attempt whose ``failover_from``
  names it).
* ``errors``: failed requests by fault label (``rate_limited``, ``timeout``, ``server_error``…).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chainproof.checkpoints.audit_read import AuditReader
from chainproof.errors import InputError

DEFAULT_SINCE = "24h"
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: the longest window (100 years, in seconds): longer ones overflow datetime arithmetic
MAX_WINDOW_S = 100 * 36525 * 864


def parse_window(since: str) -> timedelta:
    """``"24h"``, ``"90m"``, ``"7d"``, ``"2w"``, ``"3600s"`` -> the window's length. Raises
    ``InputError`` naming ``since`` for anything else (zero or negative included)."""
    m = _WINDOW.match(since or "")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)] if m is not None else 0.0
    if m is None or seconds <= 0:
        raise InputError(f"since: expected a positive duration such as 24h, 90m, 7d or 2w, got {since!r}")
    if seconds > MAX_WINDOW_S:
        raise InputError(f"since: at most {MAX_WINDOW_S // 86400} days (100 years), got {since!r}")
    return timedelta(seconds=seconds)


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass
class EndpointSla:
    """The figures of one endpoint (``day`` None: the whole window; else one UTC day ``YYYY-MM-DD``)."""

    endpoint: str
    day: str | None = None
    requests: int = 0
    ok: int = 0
    rate_limited: int = 0
    failovers: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list, repr=False)

    @property
    def availability(self) -> float | None:
        return self.ok / self.requests if self.requests else None

    @property
    def rate_limited_share(self) -> float | None:
        return self.rate_limited / self.requests if self.requests else None

    @property
    def p50_s(self) -> float | None:
        return percentile(self.latencies_s, 50)

    @property
    def p95_s(self) -> float | None:
        return percentile(self.latencies_s, 95)

    def add(self, attempt: dict[str, Any]) -> None:
        self.requests += 1
        error = attempt.get("error_class")
        if error is None:
            self.ok += 1
            latency = attempt.get("latency_s")
            if isinstance(latency, (int, float)):
                self.latencies_s.append(float(latency))
            return
        kind = str(attempt.get("kind") or error)
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if attempt.get("status_code") == 429 or kind == "rate_limited":
            self.rate_limited += 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: shares 0..1 and seconds rounded to 4 decimals."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"endpoint": self.endpoint, "day": self.day, "requests": self.requests, "ok": self.ok,
                "availability": r(self.availability), "p50_s": r(self.p50_s), "p95_s": r(self.p95_s),
                "rate_limited": self.rate_limited, "rate_limited_share": r(self.rate_limited_share),
                "failovers": self.failovers, "errors": dict(sorted(self.errors.items()))}


@dataclass
class SlaReport:
    """Per endpoint over the window (``endpoints``, by name) and per endpoint and UTC day
    (``days``, by day then name); ``since`` / ``until``: the window (aware UTC)."""

    since: datetime
    until: datetime
    endpoints: list[EndpointSla]
    days: list[EndpointSla]
    short_circuited: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "endpoints": [e.as_dict() for e in self.endpoints], "days": [d.as_dict() for d in self.days],
                "short_circuited": self.short_circuited}


def sla_report(reader: AuditReader, since: str | timedelta = DEFAULT_SINCE, *, now: datetime | None = None) -> SlaReport:
    """The endpoints' SLA figures (module docstring) over the ``since`` window ending ``now``
    (default: the current time). ``since``: a duration string (:func:`parse_window`) or a
    ``timedelta``. Raises ``InputError`` for a malformed window."""
    window = parse_window(since) if isinstance(since, str) else since
    until = now or datetime.now(UTC)
    start = until - window
    totals: dict[str, EndpointSla] = {}
    days: dict[tuple[str, str], EndpointSla] = {}
    short_circuited = 0
    for at, attempts in reader.model_attempts_since(start):
        if at > until:
            continue
        day = at.astimezone(UTC).date().isoformat()
        for a in attempts:
            endpoint = a.get("endpoint")
            if a.get("kind") == "circuit_open" or not isinstance(endpoint, str) or endpoint in ("", "-"):
                short_circuited += 1
                continue
            for row in (totals.setdefault(endpoint, EndpointSla(endpoint)),
                        days.setdefault((day, endpoint), EndpointSla(endpoint, day))):
                row.add(a)
            left = a.get("failover_from")
            if isinstance(left, str) and left not in ("", "-"):
                for row in (totals.setdefault(left, EndpointSla(left)), days.setdefault((day, left), EndpointSla(left, day))):
                    row.failovers += 1
    return SlaReport(start, until, [totals[k] for k in sorted(totals)], [days[k] for k in sorted(days)],
                     short_circuited)


__all__ = ["DEFAULT_SINCE", "EndpointSla", "SlaReport", "parse_window", "percentile", "sla_report"]
