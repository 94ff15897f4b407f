"""Peer comparison: median / percentile / premium on a tiny table, and the real 3M snapshot."""

from __future__ import annotations

from datetime import date

import pytest

from chainproof.tools.dossier import bundled_dossier, load_dossier
from chainproof.tools.peers import peer_comparison, percentile_rank


def test_tiny_table(make_dossier):
    pc = peer_comparison(load_dossier(make_dossier()), date(2021, 6, 1))
    pe = pc.get("pe")
    # peers' P/E: 10, 15, 25, 30 and -8 (negative: not meaningful, skipped)
    assert pe.target == 20 and pe.peer_count == 4 and pe.peer_median == 20
    assert pe.target_percentile == 50.0 and pe.premium_vs_median == 0.0
    assert pe.skipped_peers == ["EEE"] and (pe.peer_min, pe.peer_max) == (10, 30)
    ps = pc.get("ps")  # peers 1.0, 1.5, 3.0, 0.5 (DDD empty): median 1.25, target 2.0 above 3 of 4
    assert ps.peer_count == 4 and ps.peer_median == pytest.approx(1.25)
    assert ps.target_percentile == 75.0 and ps.premium_vs_median == pytest.approx(0.6)
    pb = pc.get("pb")  # peers 2, 3, 5, 1 (BBB empty): median 2.5, target 4 -> 75th percentile
    assert pb.peer_median == pytest.approx(2.5) and pb.target_percentile == 75.0 and pb.skipped_peers == ["BBB"]
    ev = pc.get("ev_ebitda")  # only the target has one
    assert ev.target == 12 and ev.peer_count == 0 and ev.peer_median is None and ev.target_percentile is None
    assert any("EV/EBITDA: no peer" in n for n in pc.notes)
    assert pc.peers == ["AAA", "BBB", "CCC", "DDD", "EEE"] and pc.target_market_cap_usd_m == 5000
    assert pc.snapshot_after_as_of is False


def test_snapshot_after_as_of_is_flagged(make_dossier):
    pc = peer_comparison(load_dossier(make_dossier()), date(2021, 5, 1))
    assert pc.snapshot_after_as_of and any("look-ahead" in n for n in pc.notes)


def test_percentile_rank_ties():
    assert percentile_rank(2, [1, 2, 3, 4]) == pytest.approx(37.5)
    assert percentile_rank(9, [1, 2]) == 100.0 and percentile_rank(0, [1, 2]) == 0.0
    with pytest.raises(ValueError):
        percentile_rank(1, [])


def test_real_3m_snapshot():
    pc = peer_comparison(load_dossier(bundled_dossier("MMM")), date(2018, 2, 8))
    pe = pc.get("pe")  # HON 20.68, GE 13.76, DHR 22.87, ROP 27.57, EMR 25.74
    assert pe.target == 24.31 and pe.peer_median == 22.87 and pe.peer_count == 5
    assert pe.target_percentile == 60.0 and pe.premium_vs_median == pytest.approx(24.31 / 22.87 - 1, abs=1e-6)
    assert pc.get("ev_ebitda").target == pytest.approx(16.5359, abs=1e-4)
    assert len(pc.model_dump_json()) < 4096


class _PeersView:
    """A run view holding only a peers finding (no model interpretation)."""

    def __init__(self, peers: dict) -> None:
        self.peers = peers

    def data(self, key: str) -> dict:
        return self.peers if key == "peers" else {}

    def finding(self, key: str) -> None:
        return None


def test_the_peers_table_says_not_available_as_the_rest_of_the_report_does():
    """A multiple the target has no value for (a loss: no P/E) and no premium: its cells read "not
    available", the word the financial-health table uses, never "n/a"."""
    from chainproof.graphs.dd_report import _peers

    text = _peers(_PeersView({"peers": ["KO", "PEP"], "multiples": [
        {"label": "P/E", "target": None, "peer_median": 21.5, "peer_count": 2, "target_percentile": None,
         "premium_vs_median": None},
        {"label": "P/S", "target": 2.0, "peer_median": 2.5, "peer_count": 2, "target_percentile": 40.0,
         "premium_vs_median": -0.2}]}))  # type: ignore[arg-type]
    assert "n/a" not in text
    assert "| P/E | not available | 21.50 | 2 | not available | not available |" in text
    assert "| P/S | 2.00 | 2.50 | 2 | 40 | -20.0 % |" in text and "(snapshot not available)" in text
