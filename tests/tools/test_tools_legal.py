"""Legal matters: ranking on the real 10-K sections, the bundled dossier and a synthetic text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainproof.tools.dossier import bundled_dossier, load_dossier
from chainproof.tools.legal import legal_matters, normalise_text, parse_amounts_usd_millions, rank_legal_texts

FILES = {"risk_factors": "item1a_risk_factors.txt", "legal_proceedings": "item3_legal_proceedings.txt",
         "legal_note": "legal_contingencies_note.txt"}
PFAS = re.compile(r"perfluor|\bPFCs?\b|PFOA|PFOS|PFAS|AFFF", re.I)


def review(bundle_root: Path, doc: str, top_n: int = 8):
    folder = bundle_root / "sec_10k_filings" / "sections" / doc
    texts = {k: (folder / f).read_text(encoding="utf-8") for k, f in FILES.items() if (folder / f).is_file()}
    return rank_legal_texts(texts, top_n=top_n, ticker=doc.split("_")[0])


def text_of(m) -> str:
    return f"{m.title} {m.excerpt} {' '.join(m.tags)}"


def test_3m_2017_pfas_in_top_3(bundle_root):
    r = review(bundle_root, "3M_2017_10K")
    assert any(PFAS.search(text_of(m)) for m in r.matters[:3])
    top = r.matters[0]
    assert "Minnesota" in top.title and top.amounts_usd_millions == [5000.0]  # the $5 billion NRD claim
    assert sum(bool(PFAS.search(text_of(m))) for m in r.matters) >= 3
    assert r.max_amount_usd_millions == 5000.0
    assert [m.score for m in r.matters] == sorted((m.score for m in r.matters), reverse=True)
    assert all(len(m.excerpt) <= 300 and len(m.title.split()) <= 16 for m in r.matters)


def test_jnj_2017_talc(bundle_root):
    r = review(bundle_root, "JOHNSON_JOHNSON_2017_10K")
    assert any("talc" in text_of(m).lower() for m in r.matters[:3])


def test_mgm_2017_october_1_litigation_first(bundle_root):
    r = review(bundle_root, "MGMRESORTS_2017_10K")
    assert r.matters[0].section == "legal_proceedings" and "October 1" in r.matters[0].title
    # the $13 bn of debt in the risk factors is not a legal exposure
    assert r.max_amount_usd_millions is None or r.max_amount_usd_millions < 13000


def test_boeing_2017_government_and_litigation(bundle_root):
    r = review(bundle_root, "BOEING_2017_10K")
    top3 = " ".join(text_of(m).lower() for m in r.matters[:3])
    assert "investigation" in top3 and "litigation" in top3


def test_bundled_dossier_ranking():
    r = legal_matters(load_dossier(bundled_dossier("MMM")), top_n=5)
    assert len(r.matters) == 5 and r.ticker == "MMM"
    assert r.matters[0].title.startswith("Minnesota Natural Resource Damages Lawsuit")
    assert r.matters[0].amounts_usd_millions == [5000.0]
    titles = " ".join(m.title for m in r.matters)
    assert "Bair Hugger" in titles and "Respirator" in titles
    assert len(legal_matters(load_dossier(bundled_dossier("MMM"))).model_dump_json()) < 4096


def test_synthetic_matter_beats_boilerplate(make_dossier):
    r = legal_matters(load_dossier(make_dossier()))
    assert r.matters[0].title.startswith("Water Litigation") and r.matters[0].amounts_usd_millions == [2500.0]
    assert r.matters[0].max_count == 1200
    lease = next(m for m in r.matters if m.title.startswith("Lease Commitments"))
    assert lease.score < r.matters[0].score / 3  # "not material" boilerplate ranks far below
    with pytest.raises(ValueError, match="top_n=0"):
        rank_legal_texts({"legal_note": "x"}, top_n=0)


@pytest.mark.parametrize("text, amounts", [
    ("damages of $5 billion", [5000.0]),
    ("accruals of $608 million and $595 million", [608.0, 595.0]),
    ("a quarterly fee of $100,000", [0.1]),
    ("valued at $1.2 bln, plus $3.5 thousand", [1200.0, 0.0035]),
    ("US$ 12 million", [12.0]),
])
def test_amount_parsing(text, amounts):
    assert parse_amounts_usd_millions(text) == pytest.approx(amounts)


def test_normalise_repairs_pdftotext_artifacts():
    text = "Item 1A. Risk Factor s.\n\n12\n\nTable of Contents\nCash  Flow s from   operations"
    assert normalise_text(text).split("\n") == ["Item 1A. Risk Factors.", "", "", "", "", "Cash Flows from operations"]


def test_mgm_2022_macau_revenue_threshold_is_not_legal_exposure(bundle_root):
    """MGM's 2022 legal note states the Macau concession's MOP 180 billion ($22.4 billion) gross
    gaming revenue threshold and bank guarantees: amounts, but not accruals, damages, settlements,
    fines, claims or losses; the review's largest legal amount leaves them out (3M's $5 billion in
    damages, above, still counts)."""
    r = review(bundle_root, "MGMRESORTS_2022_10K")
    assert any(22400.0 in m.amounts_usd_millions for m in r.matters if m.section == "legal_note")  # still shown
    assert r.max_amount_usd_millions is None or r.max_amount_usd_millions < 1000


def test_only_amounts_stated_as_exposure_count():
    from chainproof.tools.legal_amounts import exposure_amounts_usd_millions

    text = ("The State's damages expert contends the State incurred $5 billion in damages. The company accrued $120 "
            "million for the settlement. The concession obliges investment of $2.1 billion if gross gaming revenue "
            "exceeds $22.4 billion. A bank guarantee of $124 million covers damages or losses under the concession. "
            "We were fined $3.5 million; the jury awarded $40 million.")
    assert exposure_amounts_usd_millions(text) == [5000.0, 120.0, 3.5, 40.0]
    r = rank_legal_texts({"legal_note": "Note 12. Contingencies\nThe concession obliges investment if gross gaming "
                                        "revenue exceeds $22.4 billion, which could lead to litigation and claims.\n"})
    assert r.matters and r.max_amount_usd_millions is None
