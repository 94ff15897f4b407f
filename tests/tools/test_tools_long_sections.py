"""Long real sections: retrieval (SQLite FTS5 BM25), the map steps' chunks within the prompt budget,
and a scripted due-diligence run on 3M's real FY2017 10-K text whose every legal finding cites a
paragraph that exists and holds the cited words."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.ratelimit import estimate_tokens
from chainproof.app import Chainproof
from chainproof.graphs.prompting import compact_json
from chainproof.tools.dossier import load_dossier
from chainproof.tools.dossier_import import import_dossier
from chainproof.tools.legal_passages import (
    CHUNK_CHARS,
    PROMPT_BUDGET_TOKENS,
    check_readings,
    copied_opening,
    legal_chunk,
    paragraphs,
    quote_holds,
)
from testkit.dd_answers import READ_MARKER, dd_model

SECTIONS = {"risk_factors": "item1a_risk_factors.txt", "legal_proceedings": "item3_legal_proceedings.txt",
            "legal_note": "legal_contingencies_note.txt"}


def _texts(bundle_root: Path, doc: str) -> dict[str, str]:
    folder = bundle_root / "sec_10k_filings" / "sections" / doc
    return {k: (folder / f).read_text(encoding="utf-8") for k, f in SECTIONS.items() if (folder / f).is_file()}


@pytest.mark.parametrize(("doc", "matter"), [("PFIZER_2017_10K", "eliquis"), ("CVSHEALTH_2017_10K", "opioid"),
                                             ("PEPSICO_2017_10K", "environmental"), ("JOHNSON_JOHNSON_2017_10K", "talc"),
                                             ("MGMRESORTS_2017_10K", "october 1")])
def test_chunks_hold_verbatim_legal_paragraphs_within_the_budget(bundle_root, doc, matter):
    texts = _texts(bundle_root, doc)
    assert sum(len(t.split()) for t in texts.values()) > 3_000  # long sections, not excerpts
    by_cite = {p.cite: p for p in paragraphs(texts)}
    seen = []
    for k in (1, 2, 3):
        chunk = legal_chunk(texts, k, 3)
        assert chunk.paragraphs and sum(len(p["text"]) for p in chunk.paragraphs) <= CHUNK_CHARS
        assert "truncated" not in compact_json({"paragraphs": chunk.paragraphs})  # the model sees all of it
        for p in chunk.paragraphs:
            assert by_cite[p["cite"]].text.startswith(p["text"])  # verbatim: the paragraph or its first sentences
            seen.append(p["cite"])
    assert len(seen) == len(set(seen))
    read = " ".join(p["text"] for k in (1, 2, 3) for p in legal_chunk(texts, k, 3).paragraphs).lower()
    assert matter in read  # the matter an analyst knows this filing for is among what the model reads


def test_citations_hold_only_for_the_cited_paragraphs_words(bundle_root):
    texts = _texts(bundle_root, "3M_2017_10K")
    para = next(p for p in paragraphs(texts) if "Minnesota" in p.text and "natural resource" in p.text.lower())
    words = " ".join(para.text.split()[5:14])
    other = next(p for p in paragraphs(texts) if p.cite != para.cite and not quote_holds(words, p.text))
    copied = " ".join(para.text.split()[:12])
    checked = check_readings([f'[{para.cite}] the NRD suit: "{words}"\nnone',
                              f'[{other.cite}] misplaced: "{words}"', f'[{para.cite}] no quote here',
                              "[legal_note ¶4000] nowhere: \"the Company is a named defendant\"",
                              # the 1.5B model copies the paragraph after its cite, unquoted: that holds...
                              f"[{para.cite}] {copied} and then words of its own that the filing never says",
                              # ...but not a copy of another paragraph's words
                              f"[{other.cite}] {copied}"], texts)
    assert [(c.cite, c.holds, c.problem) for c in checked] == [
        (para.cite, True, None), (other.cite, False, "the quoted words are not in that paragraph"),
        (para.cite, False, "no quoted words"), ("legal_note ¶4000", False, "no such paragraph"),
        (para.cite, True, None), (other.cite, False, "no quoted words")]
    assert checked[4].quote == copied.rstrip(",;:")
    assert copied_opening(" ".join(para.text.split()[:4]) + " is what it says", para.text) == ""  # too few words


@pytest.fixture(scope="module")
def mmm_real(bundle_root, built_dossiers, tmp_path_factory):
    """3M imported from its real FY2017 10-K text (Item 1A, Item 3, Note 16: 78,000 characters)."""
    tmp = tmp_path_factory.mktemp("mmm-real")
    tenk = tmp / "3M_2017_10K.txt"
    tenk.write_text(gzip.open(bundle_root / "sec_10k_filings/full_text/3M_2017_10K.txt.gz", "rt").read())
    market = {f"{n}.csv": built_dossiers["MMM"] / f"{n}.csv" for n in ("prices", "benchmark", "rates", "peers")}
    return import_dossier("MMM", tenk, [], market, tmp / "MMM", as_of=None)


def test_a_run_on_a_real_10k_reads_within_budget_and_every_finding_cites_a_real_paragraph(settings, mmm_real):
    model = dd_model(wrong_citations=True)
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("due-diligence", {"company": "MMM", "as_of": "2018-02-08", "dossier": str(mmm_real)})
        assert run.requests, "the run pauses for approval"
        legal = run.state["findings"]["legal"]["data"]
        done = app.decide(run.run_id, action="approve", approver="Kim")
        assert app.replay(run.run_id).outcome == "identical"  # the readings reach the reduce step as recorded
    report = Path(done.report_path).read_text()
    section = report.split("## Legal and risk factors")[1].split("\n## ")[0]
    assert "citations hold" in section and "not used: [legal_note ¶999] no such paragraph" in section
    texts = load_dossier(mmm_real).texts
    assert sum(len(t) for t in texts.values()) > 70_000
    by_cite = {p.cite: p for p in paragraphs(texts)}
    # every prompt, the map steps' included, stays within the budget (characters / 4)
    sizes = [estimate_tokens(call, 0) for call in model.calls]
    assert max(sizes) <= PROMPT_BUDGET_TOKENS, sizes
    reads = [call for call in model.calls if READ_MARKER in str(call[-1].content)]
    assert len(reads) == 3
    # the ranked matters: each cites a paragraph that exists and holds its excerpt
    assert len(legal["matters"]) == 6
    for m in legal["matters"]:
        assert m["cite"] in by_cite and quote_holds(m["excerpt"].rstrip("…"), by_cite[m["cite"]].text), m
    assert any("Minnesota" in m["title"] and 5000.0 in m["amounts_usd_millions"] for m in legal["matters"])
    # the model's readings: the careful ones hold, the two invented ones are caught and named
    held = [r for r in legal["readings"] if r["holds"]]
    bad = [r for r in legal["readings"] if not r["holds"]]
    assert len(held) >= 6 and all(quote_holds(r["quote"], by_cite[r["cite"]].text) for r in held)
    assert {r["problem"] for r in bad} == {"no such paragraph", "the quoted words are not in that paragraph"}
    assert [r["cite"] for r in bad if r["problem"] == "no such paragraph"] == ["legal_note ¶999"]
    assert any("citations do not hold" in n for n in legal["notes"])


def test_a_revised_plan_cannot_drop_the_readings_the_legal_step_reduces(mmm_real):
    from chainproof.graphs.due_diligence import DueDiligence
    from chainproof.graphs.review import RevisedStep, resolve_revised_plan

    spec = DueDiligence()
    plan = spec.plan(spec.validate_inputs({"company": "MMM", "as_of": "2018-02-08", "dossier": str(mmm_real)}))
    ids = [p.id for p in plan]
    assert ids[:5] == ["financials", "legal_read_1", "legal_read_2", "legal_read_3", "legal"]
    assert plan[4].args_from_summaries == {"readings": ["legal_read_1", "legal_read_2", "legal_read_3"]}
    with pytest.raises(ValueError, match=r"step 'legal' needs the results of \['legal_read_2'\]"):
        resolve_revised_plan(spec, tuple(plan), [RevisedStep(id=i) for i in ids if i != "legal_read_2"])
