"""Valuation of the target against its peer group (``peers.csv`` snapshot multiples).

For each multiple -- P/E, P/S, P/B, EV/EBITDA -- with the target's value ``t`` and the peers' values
``p_1..p_n`` (the target excluded; missing and non-positive values skipped as "not meaningful"):

- ``peer_median``      = median(p) (mean of the two middle values for even n)
- ``target_percentile`` = 100 * (#{p_i < t} + 0.5 * #{p_i == t}) / n  (mid-rank percentile: 0 = cheapest)
- ``premium_vs_median`` = t / peer_median - 1 (positive = target trades at a premium)
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools._stats import median
from chainproof.tools.dossier import Dossier

__all__ = ["MULTIPLES", "MultipleComparison", "PeerComparison", "peer_comparison", "percentile_rank"]

#: attribute in peers.csv -> display label
MULTIPLES: dict[str, str] = {"pe": "P/E", "ps": "P/S", "pb": "P/B", "ev_ebitda": "EV/EBITDA"}


class MultipleComparison(BaseModel):
    """One multiple: target vs peer median; ``None`` where not available."""

    model_config = ConfigDict(frozen=True)

    multiple: str
    label: str
    target: float | None
    peer_median: float | None
    peer_count: int
    peer_min: float | None = None
    peer_max: float | None = None
    target_percentile: float | None = Field(None, description="0-100, mid-rank among peers")
    premium_vs_median: float | None = Field(None, description="fraction; 0.25 = 25 % above the median")
    skipped_peers: list[str] = Field(default_factory=list, description="peers without a meaningful value")
    peer_values: dict[str, float] = Field(default_factory=dict, description="ticker -> the peer's meaningful value")


class PeerComparison(BaseModel):
    """Result of :func:`peer_comparison`."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    snapshot_date: date
    peers: list[str]
    multiples: list[MultipleComparison]
    target_market_cap_usd_m: float | None = None
    snapshot_after_as_of: bool = False
    notes: list[str] = Field(default_factory=list)

    def get(self, multiple: str) -> MultipleComparison | None:
        """The comparison for ``multiple`` ("pe", "ps", "pb" or "ev_ebitda"), or ``None``."""
        return next((m for m in self.multiples if m.multiple == multiple), None)


def percentile_rank(value: float, others: list[float]) -> float:
    """Mid-rank percentile of ``value`` among ``others`` (0-100). ValueError when ``others`` is empty."""
    if not others:
        raise ValueError("percentile among an empty peer set")
    below = sum(1 for x in others if x < value)
    equal = sum(1 for x in others if x == value)
    return 100.0 * (below + 0.5 * equal) / len(others)


def _meaningful(v: float | None) -> bool:
    return v is not None and v > 0


def peer_comparison(d: Dossier, as_of: date | None = None) -> PeerComparison:
    """Compare the target's P/E, P/S, P/B and EV/EBITDA with its peers in ``d.peers``.

    Returns :class:`PeerComparison` (multiples are plain ratios; percentile 0-100; premium a fraction).
    Missing or non-positive multiples are skipped (listed in ``skipped_peers``/notes), never fatal.
    If ``as_of`` is given and the snapshot is dated after it, ``snapshot_after_as_of`` is set and a
    note warns about look-ahead. Raises nothing for a valid dossier.
    """
    target = d.target_peer
    assert target is not None  # load_dossier guarantees exactly one target row
    others = [p for p in d.peers if not p.is_target]
    notes: list[str] = []
    out: list[MultipleComparison] = []
    for attr, label in MULTIPLES.items():
        t = getattr(target, attr)
        vals = [(p.ticker, getattr(p, attr)) for p in others]
        good = [v for _, v in vals if _meaningful(v)]
        skipped = [tk for tk, v in vals if not _meaningful(v)]
        t_ok = _meaningful(t)
        if not t_ok:
            notes.append(f"{label}: target value {'missing' if t is None else f'{t:g} not meaningful'}")
        if not good:
            notes.append(f"{label}: no peer has a meaningful value")
        med = round(median(good), 6) if good else None
        out.append(MultipleComparison(
            multiple=attr, label=label, target=t if t_ok else None, peer_median=med, peer_count=len(good),
            peer_min=min(good) if good else None, peer_max=max(good) if good else None,
            target_percentile=round(percentile_rank(t, good), 2) if t_ok and good else None,
            premium_vs_median=round(t / med - 1.0, 6) if t_ok and med else None,
            skipped_peers=skipped, peer_values={tk: v for tk, v in vals if _meaningful(v)}))
    after = as_of is not None and d.meta.peer_snapshot_date > as_of
    if as_of is not None and after:
        notes.append(f"peer snapshot {d.meta.peer_snapshot_date.isoformat()} is dated after as_of "
                     f"{as_of.isoformat()}: look-ahead")
    return PeerComparison(ticker=d.ticker, snapshot_date=d.meta.peer_snapshot_date, peers=[p.ticker for p in others],
                          multiples=out, target_market_cap_usd_m=target.market_cap, snapshot_after_as_of=after,
                          notes=notes)
